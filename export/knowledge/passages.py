"""Documents cut into passages sized in the generator's own tokens.

A grounded prompt holds the question and several passages within the
encoder's 512 tokens, so a passage's size is counted with the tokenizer that
will read it, not in words. Passages break between sentences where they can,
and the next passage repeats the last sentences of the one before, up to
``overlap`` tokens, so an answer that spans a break is whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from export.knowledge.corpus import Document

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z0-9\"'(\[])|\n+")


@dataclass(frozen=True)
class Passage:
    """A piece of a document, the unit of retrieval and of the prompt's context."""

    id: str  # "<document id>#<n>"
    title: str
    text: str
    url: str | None
    service: str | None
    source: str
    tokens: int  # in the generator's tokenizer
    command: str | None = None  # a CLI example's command, as written

    def as_record(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "text": self.text, "url": self.url,
                "service": self.service, "source": self.source, "tokens": self.tokens, "command": self.command}


class Splitter:
    """Cuts documents into passages of at most ``size`` generator tokens, ``overlap`` repeated."""

    def __init__(self, tokenizer_file: Path, size: int, overlap: int) -> None:
        if not 16 <= size <= 1024 or not 0 <= overlap < size // 2:
            raise ValueError(f"passage size {size} / overlap {overlap}: need 16 <= size <= 1024, overlap < size/2")
        self.tok = Tokenizer.from_file(str(tokenizer_file))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.size = size
        self.overlap = overlap

    def count(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def _pieces(self, text: str) -> list[tuple[str, int]]:
        """Sentences with their token counts; a sentence longer than a passage is cut into word runs."""
        sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
        pieces: list[tuple[str, int]] = []
        for sentence, n in zip(sentences, self.count(sentences), strict=True):
            if n <= self.size:
                pieces.append((sentence, n))
                continue
            words = sentence.split()
            per_run = max(1, int(len(words) * self.size / n * 0.9))  # a little under, as token rates vary
            runs = [" ".join(words[i:i + per_run]) for i in range(0, len(words), per_run)]
            pieces.extend(zip(runs, self.count(runs), strict=True))
        return pieces

    def split(self, doc: Document) -> list[Passage]:
        """The passages of one document, in order."""
        chunks: list[list[tuple[str, int]]] = []
        current: list[tuple[str, int]] = []
        for piece in self._pieces(doc.text):
            if current and sum(n for _, n in current) + piece[1] > self.size:
                chunks.append(current)
                carried: list[tuple[str, int]] = []
                for prev in reversed(current):  # the last sentences again, within the overlap
                    if sum(n for _, n in carried) + prev[1] + piece[1] > min(self.overlap + piece[1], self.size):
                        break
                    carried.insert(0, prev)
                current = carried
            current.append(piece)
        if current:
            chunks.append(current)
        texts = [" ".join(s for s, _ in chunk) for chunk in chunks]
        return [Passage(f"{doc.id}#{i}", doc.title, text, doc.url, doc.service, doc.source, n, doc.command)
                for i, (text, n) in enumerate(zip(texts, self.count(texts), strict=True))]


def split_all(docs: list[Document], splitter: Splitter) -> tuple[list[Passage], int]:
    """Every document's passages, exact duplicates (same title and text) dropped; and how many were."""
    seen: set[tuple[str, str]] = set()
    kept: list[Passage] = []
    dropped = 0
    for doc in docs:
        for passage in splitter.split(doc):
            key = (passage.title, " ".join(passage.text.split()))
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            kept.append(passage)
    return kept, dropped

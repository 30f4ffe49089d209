"""BM25 over the knowledge base, scored at build time into plain arrays and queried with NumPy.

``bm25s`` scores eagerly the same way; measured side by side on botocore alone
(26,645 passages, ``python -m benchmarks retrieval``) it found the same passages
(recall@5 0.883 both) but a query took 15x longer (4.3 ms against 0.28 ms p50),
nearly all of it in ``argpartition`` over a mostly-zero score array. Here the build computes every
(term, passage) BM25 weight once and stores them as a CSR matrix in three
``.npy`` files plus the vocabulary as JSON; a query is a ``np.bincount`` over
the postings of its terms.

Terms: words split at camelCase (``SendMessage`` is ``send``, ``message`` and
``sendmessage``, so both the API name and the words match), lower-cased,
English stop words dropped, plurals folded.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB = "bm25_vocab.json"
INDPTR = "bm25_indptr.npy"
DOCS = "bm25_docs.npy"
WEIGHTS = "bm25_weights.npy"

K1, B = 1.2, 0.75  # BM25's term-frequency saturation and length normalisation (the usual values)
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours yourself
yourselves use using used want need one get also may must
""".split())


def _fold(term: str) -> str:
    """A light plural fold (``queues`` -> ``queue``, ``policies`` -> ``policy``); no full stemmer."""
    if len(term) > 4 and term.endswith("ies"):
        return term[:-3] + "y"
    if len(term) > 3 and term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term


def terms(text: str) -> list[str]:
    """The BM25 terms of ``text``, in order, repeats kept."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = _CAMEL.split(word)
        if len(parts) > 1:
            parts.append(word)  # the API name itself, e.g. "sendmessage"
        for part in parts:
            term = part.lower()
            if term in STOP_WORDS or (len(term) < 2 and not term.isdigit()):
                continue
            out.append(_fold(term))
    return out


@dataclass(frozen=True)
class BM25:
    """BM25 weights as CSR: the postings of term ``t`` are ``docs[indptr[t]:indptr[t+1]]``."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64 [terms + 1]
    docs: np.ndarray  # int32 [postings]
    weights: np.ndarray  # float32 [postings]
    size: int  # passages

    @classmethod
    def build(cls, texts: Iterable[str], k1: float = K1, b: float = B) -> BM25:
        """Score every (term, passage) pair once, with Lucene's BM25 (idf never negative)."""
        counts = [Counter(terms(t)) for t in texts]
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for doc, counter in enumerate(counts):
            for term, tf in counter.items():
                rows.append(vocab.setdefault(term, len(vocab)))
                cols.append(doc)
                tfs.append(tf)
        term_ids = np.asarray(rows, dtype=np.int64)
        doc_ids = np.asarray(cols, dtype=np.int32)
        freq = np.asarray(tfs, dtype=np.float32)
        lengths = np.asarray([sum(c.values()) for c in counts], dtype=np.float32)
        avgdl = float(lengths.mean()) if lengths.size else 1.0
        df = np.bincount(term_ids, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((len(counts) - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths[doc_ids] / max(avgdl, 1e-9))
        weights = idf[term_ids] * freq * (k1 + 1) / (freq + norm)
        order = np.argsort(term_ids, kind="stable")  # group the postings by term
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(vocab)), out=indptr[1:])
        return cls(vocab, indptr, doc_ids[order], weights[order].astype(np.float32), len(counts))

    def save(self, directory: Path) -> None:
        terms_in_order = sorted(self.vocab, key=self.vocab.__getitem__)
        (directory / VOCAB).write_text(json.dumps({"passages": self.size, "terms": terms_in_order}))
        np.save(directory / INDPTR, self.indptr)
        np.save(directory / DOCS, self.docs)
        np.save(directory / WEIGHTS, self.weights)

    @classmethod
    def load(cls, directory: Path) -> BM25:
        meta = json.loads((directory / VOCAB).read_text())
        vocab = {term: i for i, term in enumerate(meta["terms"])}
        index = cls(vocab, np.load(directory / INDPTR), np.load(directory / DOCS), np.load(directory / WEIGHTS),
                    int(meta["passages"]))
        if index.indptr.shape != (len(vocab) + 1,) or index.docs.shape != index.weights.shape:
            raise ValueError("BM25 arrays do not match the vocabulary")
        return index

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for ``query`` (float32 [passages]); each query term counts once."""
        ids = sorted({self.vocab[t] for t in terms(query) if t in self.vocab})
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        spans = [slice(int(self.indptr[i]), int(self.indptr[i + 1])) for i in ids]
        docs = np.concatenate([self.docs[s] for s in spans])
        weights = np.concatenate([self.weights[s] for s in spans])
        return np.bincount(docs, weights, minlength=self.size).astype(np.float32)


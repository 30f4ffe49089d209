"""Text in and out: the `tokenizers` library reading the exported tokenizer.json."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer


def clean_up_spaces(text: str) -> str:
    """Undo the spaces T5's detokenizer leaves before punctuation (as transformers does)."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                          (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text


class TextCodec:
    """Turns prompts into token ids and generated ids back into text."""

    def __init__(self, tokenizer_file: Path, clean_up: bool) -> None:
        self._tok = Tokenizer.from_file(str(tokenizer_file))
        # Padding and truncation are the batcher's business, not the tokenizer's.
        self._tok.no_padding()
        self._tok.no_truncation()
        self._clean_up = clean_up

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, ending with T5's ``</s>`` (added by tokenizer.json's post-processor)."""
        return list(self._tok.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids, special tokens dropped."""
        text = self._tok.decode(ids, skip_special_tokens=True)
        return clean_up_spaces(text) if self._clean_up else text


class TextStream:
    """Turns generated ids into text pieces as they arrive, never splitting a character."""

    def __init__(self, codec: TextCodec) -> None:
        self._codec = codec
        self.ids: list[int] = []
        self.text = ""  # what has been handed out so far

    def push(self, token: int) -> str:
        """The new text that ``token`` completes ("" while a character is still incomplete)."""
        self.ids.append(token)
        full = self._codec.decode(self.ids)
        # A byte-fallback piece decodes to U+FFFD until the rest of its character arrives;
        # and clean-up may rewrite the end of the text, so only a stable extension is handed out.
        if full.endswith("\ufffd") or not full.startswith(self.text):
            return ""
        piece, self.text = full[len(self.text):], full
        return piece

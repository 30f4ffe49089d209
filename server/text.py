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

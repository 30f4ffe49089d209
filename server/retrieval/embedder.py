"""Sentence embeddings from an int8 ONNX encoder: tokenize, run, pool, normalise, all without torch.

The same class embeds the knowledge base at build time and queries at run
time, so passages and questions are embedded by one code path. Texts are
sorted by length and batched, so a batch pads only to its own longest text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MODEL = "model.onnx"
TOKENIZER = "tokenizer.json"


@dataclass(frozen=True)
class EmbedderConfig:
    """How the encoder's token vectors become one sentence vector (the manifest's ``embedder`` section)."""

    source: str  # model id or directory it was exported from
    pooling: str  # "mean" over real tokens, or "cls"
    max_length: int  # longer texts are truncated, as sentence-transformers does
    dim: int

    @classmethod
    def from_manifest(cls, section: dict[str, Any]) -> EmbedderConfig:
        return cls(str(section["source"]), str(section["pooling"]), int(section["max_length"]), int(section["dim"]))


class Embedder:
    """An exported embedding model: ``embed(texts)`` gives L2-normalised float32 rows."""

    def __init__(self, directory: Path, config: EmbedderConfig, num_threads: int = 1) -> None:
        self.config = config
        self._tok = Tokenizer.from_file(str(directory / TOKENIZER))
        self._tok.no_padding()  # each batch is padded to its own longest text below
        self._tok.enable_truncation(config.max_length)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(directory / MODEL), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text is embedded with (after truncation)."""
        return [len(e.ids) for e in self._tok.encode_batch(texts)]

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """``[len(texts), dim]`` float32, unit length; rows in the order of ``texts``."""
        out = np.zeros((len(texts), self.config.dim), dtype=np.float32)
        encodings = self._tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._embed_batch([encodings[i].ids for i in rows])
        return out

    def _embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run(["last_hidden_state"], feed)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over the real tokens only: padding must not pull the average
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

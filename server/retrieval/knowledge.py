"""The knowledge base in a serving directory, and hybrid search over it.

Layout (beside the model, listed with sha256 in the same manifest)::

    knowledge/passages.jsonl   one passage a line: id, title, text, url, service, source, tokens
    knowledge/dense.npy        [passages, dim] float16, or int8 with dense_scales.npy (one scale a row)
    knowledge/bm25_*.npy, bm25_vocab.json   BM25 weights as CSR (see lexical.py)
    embedder/model.onnx, embedder/tokenizer.json   the int8 embedding model

A query is embedded, scored exactly against every passage vector (one
matrix-vector product), scored with BM25, and the two rankings are fused by
reciprocal rank: each passage scores ``sum(1 / (60 + rank))`` over the
rankings it appears in, so neither score scale dominates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.retrieval.embedder import Embedder, EmbedderConfig
from server.retrieval.lexical import BM25

KNOWLEDGE = "knowledge"
EMBEDDER = "embedder"
PASSAGES = "passages.jsonl"
DENSE = "dense.npy"
DENSE_SCALES = "dense_scales.npy"
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion
CANDIDATES = 50  # how deep each ranking is read before fusing
METHODS = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str
    url: str | None
    service: str | None
    tokens: int


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def save_dense(directory: Path, vectors: np.ndarray, dtype: str) -> None:
    """Unit-length float32 rows stored as float16, or int8 with one scale per row."""
    if dtype == "float16":
        np.save(directory / DENSE, vectors.astype(np.float16))
    elif dtype == "int8":
        scales = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
        np.save(directory / DENSE, np.round(vectors / scales[:, None]).astype(np.int8))
        np.save(directory / DENSE_SCALES, scales.astype(np.float32))
    else:
        raise ValueError(f"dense dtype {dtype!r}: choose float16 or int8")


def load_dense(directory: Path) -> np.ndarray:
    """float32 ``[passages, dim]``: searched with one BLAS matrix-vector product per query."""
    stored = np.load(directory / DENSE)
    vectors: np.ndarray = stored.astype(np.float32)
    if stored.dtype == np.int8:
        vectors *= np.load(directory / DENSE_SCALES)[:, None]
    return vectors


def top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first (ties by index, so results are stable)."""
    n = min(n, scores.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.lexsort((part, -scores[part]))]


class KnowledgeBase:
    """Passages, their vectors and BM25 weights, and the embedder for queries; read-only once loaded."""

    def __init__(self, passages: list[Passage], dense: np.ndarray, bm25: BM25, embedder: Embedder) -> None:
        if not len(passages) == dense.shape[0] == bm25.size:
            raise ValueError(f"{len(passages)} passages, {dense.shape[0]} vectors, {bm25.size} BM25 rows")
        self.passages = passages
        self.dense = dense
        self.bm25 = bm25
        self.embedder = embedder

    @classmethod
    def load(cls, root: Path, embedder_section: dict[str, Any], num_threads: int = 1) -> KnowledgeBase:
        """Open ``knowledge/`` and ``embedder/`` of serving directory ``root``."""
        directory = root / KNOWLEDGE
        with (directory / PASSAGES).open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        passages = [Passage(r["id"], r["title"], r["text"], r.get("url"), r.get("service"), int(r["tokens"]))
                    for r in records]
        embedder = Embedder(root / EMBEDDER, EmbedderConfig.from_manifest(embedder_section), num_threads)
        return cls(passages, load_dense(directory), BM25.load(directory), embedder)

    def dense_scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query with every passage."""
        vector = self.embedder.embed([query])[0]
        scores: np.ndarray = self.dense @ vector
        return scores

    def search(self, query: str, k: int, method: str = "hybrid") -> list[Hit]:
        """The ``k`` best passages for ``query``: ``hybrid`` (fused), ``dense`` or ``bm25`` alone."""
        if method == "dense":
            scores = self.dense_scores(query)
            return [Hit(self.passages[i], float(scores[i])) for i in top_indices(scores, k)]
        lexical = self.bm25.scores(query)
        if method == "bm25":
            return [Hit(self.passages[i], float(lexical[i])) for i in top_indices(lexical, k) if lexical[i] > 0]
        if method != "hybrid":
            raise ValueError(f"unknown search method {method!r}; choose from {METHODS}")
        fused: dict[int, float] = {}
        rankings = [top_indices(self.dense_scores(query), CANDIDATES)]
        rankings.append(np.asarray([i for i in top_indices(lexical, CANDIDATES) if lexical[i] > 0], dtype=np.int64))
        for ranking in rankings:
            for rank, index in enumerate(ranking.tolist()):
                fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [Hit(self.passages[i], score) for i, score in best]

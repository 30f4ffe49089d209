"""The knowledge base in a serving directory, and hybrid search over it.

Layout (beside the model, listed with sha256 in the same manifest)::

    knowledge/passages.jsonl   one passage a line: id, title, text, url, service, source, tokens
    knowledge/dense.npy        [passages, dim] float16, or int8 with dense_scales.npy (one scale a row)
    knowledge/bm25_*.npy, bm25_vocab.json   BM25 weights as CSR (see lexical.py)
    embedder/model.onnx, embedder/tokenizer.json   the int8 embedding model

A query is embedded, scored exactly against every passage vector (one
matrix-vector product), scored with BM25, and the two rankings are fused as
:mod:`server.retrieval.ranking` says. A filter (services, sources) is a mask
over the passages, applied before either ranking picks its candidates.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.retrieval import ranking
from server.retrieval.embedder import Embedder, EmbedderConfig
from server.retrieval.lexical import BM25
from server.retrieval.ranking import top_indices

KNOWLEDGE = "knowledge"
EMBEDDER = "embedder"
PASSAGES = "passages.jsonl"
DENSE = "dense.npy"
DENSE_SCALES = "dense_scales.npy"
METHODS = ("hybrid", "rrf", "dense", "bm25")


@dataclass(frozen=True)
class Passage:
    id: str  # "<document id>#<n>": passages of one document share what comes before the "#"
    title: str
    text: str
    url: str | None
    service: str | None  # botocore's service id for AWS passages ("s3"), else None
    tokens: int
    source: str = "botocore"  # which corpus (export.knowledge.sources), "docs" for your own files
    command: str | None = None  # a CLI example's command, as written

    def as_json(self) -> dict[str, Any]:
        """The passage as /search and every answer's ``sources`` show it (a score is added by the caller)."""
        return {"id": self.id, "title": self.title, "text": self.text, "url": self.url, "source": self.source,
                "service": self.service, "command": self.command}


class UnknownFilter(ValueError):
    """A filter names a service or source this knowledge base does not hold."""


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


def _codes(values: list[str | None], index: dict[str, int]) -> np.ndarray:
    """Each value's code in ``index`` (-1 for None), as int16."""
    return np.asarray([index.get(v, -1) if v is not None else -1 for v in values], dtype=np.int16)


def _lookup(kind: str, wanted: tuple[str, ...], index: dict[str, int]) -> list[int]:
    """Codes of ``wanted``; :class:`UnknownFilter` names the first one missing, and its look-alikes."""
    names = list(index)
    for name in wanted:
        if name not in index:
            close = difflib.get_close_matches(name.lower(), names, n=3)
            hint = (f" (did you mean {', '.join(close)}?)" if close
                    else f" (it has {len(names)} {kind}s: GET /search/filters)")
            raise UnknownFilter(f"{kind}: this knowledge base has no {kind} {name[:64]!r}{hint}")
    return [index[n] for n in wanted]


class KnowledgeBase:
    """Passages, their vectors and BM25 weights, and the embedder for queries; read-only once loaded."""

    def __init__(self, passages: list[Passage], dense: np.ndarray, bm25: BM25, embedder: Embedder) -> None:
        if not len(passages) == dense.shape[0] == bm25.size:
            raise ValueError(f"{len(passages)} passages, {dense.shape[0]} vectors, {bm25.size} BM25 rows")
        self.passages = passages
        self.dense = dense
        self.bm25 = bm25
        self.embedder = embedder
        # GET /search/filters: what a filter may name, each with its passages (the passages never change).
        self.facets = {"service": dict(sorted(Counter(p.service for p in passages if p.service).items())),
                       "source": dict(sorted(Counter(p.source for p in passages).items()))}
        self.services, self.sources = list(self.facets["service"]), list(self.facets["source"])
        # Each passage's service and source as small integer codes, so a filter is one vectorised isin.
        self._service_index = {name: i for i, name in enumerate(self.services)}
        self._source_index = {name: i for i, name in enumerate(self.sources)}
        self._service_of = _codes([p.service for p in passages], self._service_index)
        self._source_of = _codes([p.source for p in passages], self._source_index)
        documents = [p.id.split("#", 1)[0] for p in passages]
        self._document_of = np.unique(np.asarray(documents), return_inverse=True)[1].astype(np.int32)
        self.prior = ranking.service_prior([p.service for p in passages], [p.source for p in passages])

    @classmethod
    def load(cls, root: Path, embedder_section: dict[str, Any], num_threads: int = 1) -> KnowledgeBase:
        """Open ``knowledge/`` and ``embedder/`` of serving directory ``root``."""
        directory = root / KNOWLEDGE
        with (directory / PASSAGES).open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        passages = [Passage(r["id"], r["title"], r["text"], r.get("url"), r.get("service"), int(r["tokens"]),
                            str(r.get("source") or "botocore"), r.get("command")) for r in records]
        embedder = Embedder(root / EMBEDDER, EmbedderConfig.from_manifest(embedder_section), num_threads)
        return cls(passages, load_dense(directory), BM25.load(directory), embedder)

    def narrow(self, services: tuple[str, ...] | None, sources: tuple[str, ...] | None) -> np.ndarray | None:
        """The passages a filter keeps, as a boolean mask (None: all); :class:`UnknownFilter` for unknown names."""
        mask: np.ndarray | None = None
        for kind, wanted, index, codes in (("service", services, self._service_index, self._service_of),
                                           ("source", sources, self._source_index, self._source_of)):
            if wanted is not None:
                keep = np.isin(codes, _lookup(kind, wanted, index))
                mask = keep if mask is None else mask & keep
        return mask

    def dense_scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query with every passage."""
        vector = self.embedder.embed([query])[0]
        scores: np.ndarray = self.dense @ vector
        return scores

    def search(self, query: str, k: int, method: str = "hybrid", keep: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best passages for ``query`` among those ``keep`` marks (default: all).

        ``hybrid`` is the ranking of :mod:`server.retrieval.ranking`; ``rrf`` the reciprocal rank fusion it
        replaced, ``dense`` and ``bm25`` each ranking alone (the last three for comparison).
        """
        if method not in METHODS:
            raise ValueError(f"unknown search method {method!r}; choose from {METHODS}")
        dense = self.dense_scores(query) if method != "bm25" else np.zeros(0, dtype=np.float32)
        lexical = self.bm25.scores(query) if method != "dense" else np.zeros(0, dtype=np.float32)
        if keep is not None:  # a filter: what it leaves out can never be a candidate
            if dense.size:
                dense[~keep] = -np.inf
            if lexical.size:
                lexical[~keep] = 0
        if method == "dense":
            return [Hit(self.passages[i], float(dense[i])) for i in top_indices(dense, k) if np.isfinite(dense[i])]
        if method == "bm25":
            return [Hit(self.passages[i], float(lexical[i])) for i in top_indices(lexical, k) if lexical[i] > 0]
        if method == "rrf":
            pool, scores = ranking.reciprocal_rank(dense, lexical)
            return [Hit(self.passages[int(pool[i])], float(scores[i])) for i in np.lexsort((pool, -scores))[:k]]
        pool, scores = ranking.fuse(dense, lexical, self.prior)
        chosen = ranking.diversify(pool, scores, self._service_of, self._document_of, k)
        return [Hit(self.passages[i], score) for i, score in chosen]

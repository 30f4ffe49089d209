"""Scoring retrieval on the question sets: hits, parts, source mixes and what reaches the prompt.

Two sets of questions in a user's words, written before the ranking was tuned (``benchmarks/data``):

- **plain** ("which service / what is"): the project's own 60 and 50 more; a passage is a hit when it
  comes from one of the services the question names.
- **how-to** ("how do I ..."): a hit is a passage of an accepted service whose title and text, lower-cased,
  hold one alternative of every group in ``speaks_of`` (it addresses the task, not just the service).

Each set is split by position: even questions are the half the ranking was tuned on, odd ones the
held-out half. After the first full run had shown the held-out half's misses, a third part was written by
someone who had seen no result (``fresh_questions.json``): the clean held-out figure.

Source mixes are measured as the knowledge base those sources alone would build: the same passages and
vectors (an embedding depends only on the passage), BM25 and the prior recomputed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from benchmarks.common import median, percentile
from server.retrieval.knowledge import KnowledgeBase, Passage
from server.retrieval.lexical import BM25

DATA = Path(__file__).parent / "data"
SETS = {"plain": ("retrieval_questions.json", "service_questions.json"), "how-to": ("howto_questions.json",)}
FRESH = "fresh_questions.json"  # {"plain": [...], "how-to": [...]}, written after tuning, never tuned on
HALVES = ("tuned", "held-out", "fresh")
MIXES = {"botocore": ("botocore",), "+ awscli": ("botocore", "awscli"), "+ cdk": ("botocore", "awscli", "cdk"),
         "+ cloudformation": ("botocore", "awscli", "cdk", "cloudformation")}


def question_sets(services: tuple[str, ...] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Both sets; with ``services`` (a quick corpus) only the questions it can answer."""
    sets = {name: [q for f in files for q in json.loads((DATA / f).read_text())["questions"]]
            for name, files in SETS.items()}
    fresh = json.loads((DATA / FRESH).read_text())
    sets = {name: [{**q, "part": HALVES[i % 2]} for i, q in enumerate(items)] + [{**q, "part": "fresh"}
                                                                                 for q in fresh[name]]
            for name, items in sets.items()}
    if services:
        sets = {name: [q for q in items if set(q["services"]) & set(services)] for name, items in sets.items()}
    return sets


T = TypeVar("T")


def part(items: list[dict[str, Any]], values: list[T], which: str) -> list[T]:
    """Of ``values`` (one per question of ``items``), those of the questions in part ``which``."""
    return [v for item, v in zip(items, values, strict=True) if item["part"] == which]


def is_hit(item: dict[str, Any], passage: Passage) -> bool:
    """Whether ``passage`` answers ``item``: its service is accepted and, for a how-to, it speaks of the task."""
    if passage.service not in item["services"]:
        return False
    text = f"{passage.title} {passage.text}".lower()
    return all(any(alt in text for alt in group) for group in item.get("speaks_of", ()))


def scores(items: list[dict[str, Any]], ranked: list[list[Passage]]) -> dict[str, Any]:
    """recall@1, recall@5 and MRR@10 of each question's top 10, and the questions missed at 5."""
    ranks = [next((r for r, p in enumerate(found[:10], 1) if is_hit(item, p)), None)
             for item, found in zip(items, ranked, strict=True)]
    n = max(len(items), 1)
    return {"questions": len(items), "recall@1": sum(r == 1 for r in ranks) / n,
            "recall@5": sum(r is not None and r <= 5 for r in ranks) / n, "mrr@10": sum(1 / r for r in ranks if r) / n,
            "misses@5": [i["question"] for i, r in zip(items, ranks, strict=True) if r is None or r > 5]}


def evaluate(kb: KnowledgeBase, sets: dict[str, list[dict[str, Any]]], method: str) -> dict[str, Any]:
    """Per set and half: the scores of ``method``, and its per-query latency over all the questions."""
    out: dict[str, Any] = {}
    times: list[float] = []
    for name, items in sets.items():
        ranked = []
        for item in items:
            began = time.perf_counter()
            ranked.append([h.passage for h in kb.search(item["question"], 10, method)])
            times.append((time.perf_counter() - began) * 1000)
        out[name] = {h: scores(part(items, items, h), part(items, ranked, h)) for h in HALVES}
    return {**out, "p50_ms": median(times), "p95_ms": percentile(times, 95)}


def subset(kb: KnowledgeBase, sources: tuple[str, ...]) -> KnowledgeBase:
    """The knowledge base these sources alone build: the same passages and vectors, BM25 and prior anew."""
    keep = [i for i, p in enumerate(kb.passages) if p.source in sources]
    passages = [kb.passages[i] for i in keep]
    return KnowledgeBase(passages, kb.dense[keep], BM25.build(f"{p.title}: {p.text}" for p in passages),
                         kb.embedder)


def context_recall(kb: KnowledgeBase, sets: dict[str, list[dict[str, Any]]], encode: Callable[[str], list[int]],
                   k: int, limit: int, template: str, grounded: str) -> dict[str, Any]:
    """How often a hit passage is inside the prompt ``compose()`` builds from the top ``k`` within ``limit``."""
    from server import prompt

    out: dict[str, Any] = {"k": k, "max_input_tokens": limit}
    for name, items in sets.items():
        inside = []
        for item in items:
            hits = kb.search(item["question"], k)
            composed = prompt.compose(encode, limit, item["question"], template=template, grounded_template=grounded,
                                      passages=[prompt.passage_text(h.passage.title, h.passage.text) for h in hits])
            inside.append(any(is_hit(item, h.passage) for h in hits[:composed.passages]))
        out[name] = {h: float(np.mean(part(items, inside, h))) if part(items, inside, h) else 0.0 for h in HALVES}
    return out

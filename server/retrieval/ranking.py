"""How the knowledge base ranks passages: dense and BM25 fused by score, mainstream services first, spread out.

Measured on two question sets in a user's words (``python -m benchmarks retrieval``), the old ranking lost
in two ways. Reciprocal rank fusion let a passage that both rankings place modestly beat the dense ranking's
clear first, so a niche service whose operation repeats the user's words ("firewall", "instance",
"cache") outranked the one meant; and several passages of one document filled the top 5. Here:

1. **Fusion by score.** Each ranking's top ``CANDIDATES`` are scaled to [0, 1] (dense between its last
   and first candidate, BM25 by its best) and averaged with weight ``DENSE_WEIGHT``: a strong match in
   one ranking counts as strongly as it is.
2. **A prior for services people use**, from the corpora themselves: how many worked examples (awscli)
   and guide sections (CDK) a service has, log-scaled to (0, 1]. A passage's fused score is multiplied by
   ``1 + PRIOR_WEIGHT * prior``: a tie-breaker between services, never a list of favourites. Passages with
   no service (your own ``--docs``, Kubernetes, Azure) take the full prior.
3. **Spread over services and documents.** The top k is picked greedily: a passage's score is
   discounted by ``SERVICE_DECAY`` for each passage of its service already picked, and a document already
   picked waits until no other is left. Five passages then cover several services unless one is far ahead,
   and the mainstream service is rarely crowded out by two neighbours repeating the user's words.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

CANDIDATES = 50  # how deep each ranking is read before fusing
DENSE_WEIGHT = 0.5  # dense's share of the fused score; BM25 has the rest
PRIOR_WEIGHT = 0.3  # how much the most documented service gains over one with no examples or guides
HOW_TO_SOURCES = ("awscli", "cdk")  # documentation written for people doing a task: what the prior counts
DIVERSITY_DEPTH = 60  # candidates the spread-out top k is chosen from
SERVICE_DECAY = 0.8  # each passage of a service already picked discounts the next of that service by this
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion (the "rrf" method, for comparison)


def top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first (ties by index, so results are stable)."""
    n = min(n, scores.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.lexsort((part, -scores[part]))]


def service_prior(services: list[str | None], sources: list[str]) -> np.ndarray:
    """Each passage's prior in (0, 1]: log(1 + how-to passages of its service), scaled by the largest."""
    howto = Counter(s for s, src in zip(services, sources, strict=True) if s and src in HOW_TO_SOURCES)
    top = math.log1p(max(howto.values(), default=0)) or 1.0
    return np.asarray([1.0 if s is None else max(math.log1p(howto[s]) / top, 1e-3) for s in services],
                      dtype=np.float32)


def candidates(dense: np.ndarray, lexical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each ranking's top ``CANDIDATES`` (BM25's with a score above 0)."""
    by_dense = top_indices(dense, CANDIDATES)
    by_dense = by_dense[np.isfinite(dense[by_dense])]
    by_lexical = top_indices(lexical, CANDIDATES)
    return by_dense, by_lexical[lexical[by_lexical] > 0]


def fuse(dense: np.ndarray, lexical: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate passages and their fused, prior-weighted scores (step 1 and 2 above)."""
    by_dense, by_lexical = candidates(dense, lexical)
    pool = np.union1d(by_dense, by_lexical)
    if pool.size == 0:
        return pool, np.zeros(0, dtype=np.float32)
    scores = np.zeros(pool.size, dtype=np.float32)
    if by_dense.size:
        low, high = float(dense[by_dense[-1]]), float(dense[by_dense[0]])
        scaled = (dense[pool] - low) / max(high - low, 1e-6)
        scores += DENSE_WEIGHT * np.clip(np.nan_to_num(scaled, neginf=0.0), 0.0, None)
    if by_lexical.size:
        scores += (1 - DENSE_WEIGHT) * lexical[pool] / float(lexical[by_lexical[0]])
    return pool, scores * (1 + PRIOR_WEIGHT * prior[pool])


def reciprocal_rank(dense: np.ndarray, lexical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranking before this one, kept for comparison: ``sum(1 / (60 + rank))`` over both rankings."""
    fused: dict[int, float] = {}
    for ranking in candidates(dense, lexical):
        for rank, index in enumerate(ranking.tolist()):
            fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank + 1)
    pool = np.fromiter(fused, dtype=np.int64, count=len(fused))
    return pool, np.fromiter(fused.values(), dtype=np.float32, count=len(fused))


def diversify(pool: np.ndarray, scores: np.ndarray, services: np.ndarray, documents: np.ndarray, k: int
              ) -> list[tuple[int, float]]:
    """The ``k`` best (passage, discounted score) of ``pool``, spread over services and documents (step 3).

    Greedy over the ``DIVERSITY_DEPTH`` best candidates: each pick is the one whose score, times
    ``SERVICE_DECAY`` for every passage of its service already picked, is highest; a document already
    picked is passed over while any other is left. Passages with no service are never discounted.
    """
    order = np.lexsort((pool, -scores))[:DIVERSITY_DEPTH]
    chosen, base = pool[order], scores[order].astype(np.float64)
    service, document = services[chosen].astype(np.int64), documents[chosen]
    picked_per_service = np.zeros(int(services.max(initial=-1)) + 2, dtype=np.int64)  # index 0: no service
    free = np.ones(chosen.size, dtype=bool)
    out: list[tuple[int, float]] = []
    for _ in range(min(k, chosen.size)):
        discounted = base * SERVICE_DECAY ** np.where(service >= 0, picked_per_service[service + 1], 0)
        fresh = free & ~np.isin(document, document[~free])
        at = int(np.argmax(np.where(fresh if fresh.any() else free, discounted, -np.inf)))
        free[at] = False
        picked_per_service[service[at] + 1] += 1
        out.append((int(chosen[at]), float(discounted[at])))  # the score that placed it: best first
    return out

"""The int8 ONNX embedder against PyTorch fp32 on the real corpus: cosines, and how often both find the same passages.

Scored on the plain question set at the level of services (a passage is a hit when it comes from a
service the question names), as the dense row of the retrieval report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from server.retrieval.knowledge import KnowledgeBase
from server.retrieval.ranking import top_indices


def service_scores(items: list[dict[str, Any]], found: list[list[str | None]]) -> dict[str, Any]:
    """recall@1, recall@5, MRR@10 from each question's services of its top 10, best first."""
    ranks = [next((r for r, s in enumerate(services[:10], 1) if s in item["services"]), None)
             for item, services in zip(items, found, strict=True)]
    n = len(items)
    return {"recall@1": sum(r == 1 for r in ranks) / n, "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@10": sum(1 / r for r in ranks if r) / n}


def embedder_vs_pytorch(kb: KnowledgeBase, kb_dir: Path, items: list[dict[str, Any]], sample: int,
                        depth: int = 30) -> dict[str, Any]:
    """Cosines of int8 and PyTorch fp32 embeddings, and how often both find the same dense top 5 in the full index.

    PyTorch embeds the union over the questions of the int8 dense top ``depth`` over the full index, plus ``sample``
    random passages for the cosines. fp32's top 5 over the full index is taken as its top 5 among those (at cosines
    ~0.99 a passage outside int8's top ``depth`` does not reach it); int8's top 5 is among them by construction.
    """
    from export.knowledge.embedder import reference_embeddings

    model_dir = Path(json.loads((kb_dir / "sections.json").read_text())["embedder"]["source"])
    cfg = kb.embedder.config
    qs = [q["question"] for q in items]
    ours_q = np.stack([kb.embedder.embed([q])[0] for q in qs])  # one at a time, as the server embeds a query
    ours_top = [top_indices(kb.dense @ v, depth) for v in ours_q]
    rng = np.random.default_rng(0)
    picked = rng.choice(len(kb.passages), size=min(sample, len(kb.passages)), replace=False)
    cand = np.union1d(np.concatenate(ours_top), picked)  # sorted passage indices
    texts = [f"{kb.passages[i].title}: {kb.passages[i].text}" for i in cand]  # as the build embedded them
    order = np.argsort([len(t) for t in texts], kind="stable")  # batches of similar lengths pad little
    ref_p = np.zeros((len(cand), kb.dense.shape[1]), dtype=np.float32)
    began = time.perf_counter()
    for s in range(0, len(order), 64):
        rows = order[s:s + 64]
        ref_p[rows] = reference_embeddings(model_dir, cfg.pooling, cfg.max_length, [texts[i] for i in rows])
    ref_seconds = time.perf_counter() - began
    ref_q = reference_embeddings(model_dir, cfg.pooling, cfg.max_length, qs)
    cos_p, cos_q = (kb.dense[cand] * ref_p).sum(1), (ours_q * ref_q).sum(1)
    ref_top = [cand[top_indices(ref_p @ v, 10)].tolist() for v in ref_q]  # fp32's top 10 among the candidates
    pairs = [(a.tolist(), b) for a, b in zip(ours_top, ref_top, strict=True)]
    # How deep in int8's ranking fp32's top 5 reaches: depth + 1 when beyond it (then the approximation is loose).
    deepest = max(a.index(i) + 1 if i in a else depth + 1 for a, b in pairs for i in b[:5])
    cos = np.concatenate([cos_p, cos_q])
    return {"passages": len(cand), "sampled": len(picked), "depth": depth, "questions": len(qs),
            "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()),
            "mean_cosine_questions": float(cos_q.mean()), "min_cosine_questions": float(cos_q.min()),
            "top5_overlap": float(np.mean([len(set(a[:5]) & set(b[:5])) / 5 for a, b in pairs])),
            "top1_agreement": float(np.mean([a[0] == b[0] for a, b in pairs])),
            "fp32_top5_deepest_int8_rank": deepest,
            "fp32_dense": service_scores(items, [[kb.passages[i].service for i in b] for b in ref_top]),
            "pytorch_fp32_seconds_per_1000_passages": ref_seconds / len(cand) * 1000}

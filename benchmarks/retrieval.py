"""Retrieval quality and cost on the real corpus with the real embedder.

Builds the knowledge base from all of botocore (or reuses one built before),
then on ``benchmarks/data/retrieval_questions.json``: recall@1, recall@5 and
MRR@10 for BM25 alone, dense alone and the hybrid; per-query latency; build
time, size on disk and RAM; float16 against int8 passage vectors; and the int8
ONNX embedder against PyTorch fp32 (cosines and top-5 overlap).

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
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import MODELS_DIR, ROOT, fmt, log, md_table, median, percentile, write_results
from export.knowledge.build import KnowledgeOptions, build_knowledge
from server.retrieval.knowledge import METHODS, KnowledgeBase, save_dense

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


def evaluate(kb: KnowledgeBase, items: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """recall@1, recall@5, MRR@10 and latency of one method over the question set."""
    ranks, times = [], []
    for item in items:
        began = time.perf_counter()
        hits = kb.search(item["question"], 10, method)
        times.append((time.perf_counter() - began) * 1000)
        wanted = set(item["services"])
        ranks.append(next((r for r, h in enumerate(hits, 1) if h.passage.service in wanted), None))
    n = len(items)
    return {"recall@1": sum(r == 1 for r in ranks) / n, "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@10": sum(1 / r for r in ranks if r) / n, "p50_ms": median(times), "p95_ms": percentile(times, 95),
            "misses@5": [item["question"] for item, r in zip(items, ranks, strict=True) if r is None or r > 5]}


def embedder_vs_pytorch(kb: KnowledgeBase, kb_dir: Path, items: list[dict[str, Any]], sample: int) -> dict[str, Any]:
    """Cosines of int8 and PyTorch fp32 embeddings, and how often both find the same dense top 5."""
    from export.knowledge.embedder import reference_embeddings

    model_dir = Path(json.loads((kb_dir / "sections.json").read_text())["embedder"]["source"])
    cfg = kb.embedder.config
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(kb.passages), size=min(sample, len(kb.passages)), replace=False))
    texts = [f"{kb.passages[i].title}: {kb.passages[i].text}" for i in picked]
    qs = [q["question"] for q in items]
    began = time.perf_counter()
    ref_p = np.concatenate([reference_embeddings(model_dir, cfg.pooling, cfg.max_length, texts[s:s + 64])
                            for s in range(0, len(texts), 64)])
    ref_seconds = time.perf_counter() - began
    ref_q = reference_embeddings(model_dir, cfg.pooling, cfg.max_length, qs)
    ours_p, ours_q = kb.dense[picked], kb.embedder.embed(qs)
    cos = np.concatenate([(ours_p * ref_p).sum(1), (ours_q * ref_q).sum(1)])
    overlaps = []
    for row in range(len(qs)):
        top_ours = set(np.argsort(-(ours_p @ ours_q[row]))[:5].tolist())
        top_ref = set(np.argsort(-(ref_p @ ref_q[row]))[:5].tolist())
        overlaps.append(len(top_ours & top_ref) / 5)
    return {"passages": len(picked), "questions": len(qs), "mean_cosine": float(cos.mean()),
            "min_cosine": float(cos.min()), "top5_overlap": float(np.mean(overlaps)),
            "pytorch_fp32_seconds_per_1000_passages": ref_seconds / len(picked) * 1000}


def main(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, float]:
    kb_dir = ensure_knowledge(args)
    sections = json.loads((kb_dir / "sections.json").read_text())
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
    rows = [[m, fmt(r[m]["recall@1"], 3), fmt(r[m]["recall@5"], 3), fmt(r[m]["mrr@10"], 3),
             fmt(r[m]["p50_ms"], 2), fmt(r[m]["p95_ms"], 2)] for m in METHODS]
    rows += [[f"{m}, int8 vectors", fmt(d["int8_vectors"][m]["recall@1"], 3), fmt(d["int8_vectors"][m]["recall@5"], 3),
              fmt(d["int8_vectors"][m]["mrr@10"], 3), fmt(d["int8_vectors"][m]["p50_ms"], 2),
              fmt(d["int8_vectors"][m]["p95_ms"], 2)] for m in ("dense", "hybrid")]
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
    if "embedder_vs_pytorch" in d:
        e = d["embedder_vs_pytorch"]
        body += (f"\nint8 ONNX embedder against PyTorch fp32 over {e['passages']} passages and {e['questions']} "
                 f"questions: mean cosine {e['mean_cosine']:.4f}, minimum {e['min_cosine']:.4f}; dense top-5 "
                 f"overlap {e['top5_overlap']:.3f}. PyTorch fp32 embeds 1,000 passages in "
                 f"{e['pytorch_fp32_seconds_per_1000_passages']:.1f} s.\n")
    misses = r["hybrid"]["misses@5"]
    if misses:
        body += "\nHybrid misses at 5:\n\n" + "\n".join(f"- {q}" for q in misses) + "\n"
    return body

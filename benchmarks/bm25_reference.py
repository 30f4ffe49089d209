"""The ``bm25s`` library beside our own BM25, as a reference: recall, latency and cost on the same passages.

Benchmark-only (``requirements/test.txt``). Both index what the knowledge base's BM25 indexed, each passage's
``title: text`` from ``knowledge/passages.jsonl`` (see ``export/knowledge/build.py``), with the same k1 and b and
Lucene's BM25 (bm25s's default method; its idf is ours). bm25s runs with its default tokenizer and English stop
words, and once more with PyStemmer's English stemmer when PyStemmer is installed. Queries go one at a time, as the
server sends them: ``bm25s.tokenize`` then ``retrieve``, passages scoring 0 dropped as our ``bm25`` drops them.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, fmt, log, md_table, median
from server.retrieval.knowledge import KNOWLEDGE, KnowledgeBase
from server.retrieval.lexical import BM25, K1, B

Measure = Callable[[list[dict[str, Any]], Callable[[str], list[str | None]]], dict[str, Any]]


def available() -> str | None:
    """bm25s's version, or None when it is not installed."""
    try:
        import bm25s
    except ImportError:
        return None
    return str(bm25s.__version__)


_LOAD = """
import json, time, psutil
from pathlib import Path
{imports}
rss, began = psutil.Process().memory_info().rss, time.perf_counter()
index = {load}
print(json.dumps([time.perf_counter() - began, psutil.Process().memory_info().rss - rss]))
"""


def _load_cost(imports: str, load: str) -> tuple[float, int]:
    """Seconds and RSS growth of loading a saved index, in a fresh interpreter (no allocator reuse)."""
    done = subprocess.run([sys.executable, "-c", _LOAD.format(imports=imports, load=load)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    seconds, ram = json.loads(done.stdout.splitlines()[-1])
    return float(seconds), int(ram)


def _variants() -> Iterator[tuple[str, Any]]:
    yield "", None
    try:
        import Stemmer
    except ImportError:
        return
    yield f" + PyStemmer {importlib.metadata.version('PyStemmer')}", Stemmer.Stemmer("english")


def _score_p50_ms(score: Callable[[str], Any], items: list[dict[str, Any]]) -> float:
    """Median ms to tokenize a question and score every passage, without picking the top k."""
    times = []
    for item in items:
        began = time.perf_counter()
        score(item["question"])
        times.append((time.perf_counter() - began) * 1000)
    return median(times)


def _ours(kb: KnowledgeBase, kb_dir: Path, texts: list[str], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Our BM25 built again from the same texts (build time) and loaded from the knowledge base (load, RSS)."""
    began = time.perf_counter()
    BM25.build(texts)
    build = time.perf_counter() - began
    index = BM25.load(kb_dir / KNOWLEDGE)
    load, ram = _load_cost("from server.retrieval.lexical import BM25", f"BM25.load(Path({str(kb_dir / KNOWLEDGE)!r}))")
    disk = sum(p.stat().st_size for p in (kb_dir / KNOWLEDGE).glob("bm25_*"))
    return {"score_p50_ms": _score_p50_ms(kb.bm25.scores, items), "build_seconds": build, "load_seconds": load,
            "load_rss_bytes": ram, "disk_bytes": disk, "terms": len(index.vocab),
            "array_bytes": index.indptr.nbytes + index.docs.nbytes + index.weights.nbytes}


def _run(bm25s: Any, texts: list[str], services: list[str | None], stemmer: Any, items: list[dict[str, Any]],
         measure: Measure) -> dict[str, Any]:
    began = time.perf_counter()
    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    build = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        retriever.save(tmp, show_progress=False)
        disk = sum(p.stat().st_size for p in Path(tmp).iterdir())
        load, ram = _load_cost("import bm25s", f"bm25s.BM25.load({tmp!r}, show_progress=False)")

    def words(query: str) -> Any:
        return bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)

    def search(query: str) -> list[str | None]:
        docs, scores = retriever.retrieve(words(query), k=10, show_progress=False)
        return [services[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def score(query: str) -> Any:
        return retriever.get_scores(w) if (w := words(query)[0]) else None

    for item in items[:5]:  # warm up, as for the other methods
        search(item["question"])
    arrays = sum(retriever.scores[k].nbytes for k in ("data", "indices", "indptr"))
    return {**measure(items, search), "score_p50_ms": _score_p50_ms(score, items), "build_seconds": build,
            "load_seconds": load, "load_rss_bytes": ram, "disk_bytes": disk, "array_bytes": arrays,
            "terms": len(retriever.vocab_dict)}


def compare(kb: KnowledgeBase, kb_dir: Path, items: list[dict[str, Any]], measure: Measure) -> dict[str, Any]:
    """recall@1/@5, MRR@10 (scored by ``measure``, as every method) and latency of bm25s; build, load and bytes."""
    import bm25s

    texts = [f"{p.title}: {p.text}" for p in kb.passages]
    services = [p.service for p in kb.passages]
    out: dict[str, Any] = {"version": bm25s.__version__, "k1": K1, "b": B, "method": "lucene",
                           "passages": len(texts), "ours": _ours(kb, kb_dir, texts, items), "runs": {}}
    for suffix, stemmer in _variants():
        label = f"bm25 (bm25s {bm25s.__version__}{suffix}, reference)"
        out["runs"][label] = {**_run(bm25s, texts, services, stemmer, items, measure),
                              "stemmer": suffix.strip(" +") or None}
    return out


def run(kb: KnowledgeBase, kb_dir: Path, items: list[dict[str, Any]], measure: Measure,
        skip: bool) -> dict[str, Any] | None:
    """:func:`compare`, or None with a note when skipped (``--skip-bm25s``) or bm25s is not installed."""
    if skip:
        log("bm25s: skipped (--skip-bm25s)")
        return None
    if available() is None:
        log("bm25s is not installed: no reference BM25 (pip install -r requirements/test.txt)")
        return None
    log(f"bm25s {available()}: indexing the same {len(kb.passages):,} passages")
    return compare(kb, kb_dir, items, measure)


def report(d: dict[str, Any]) -> str:
    """The cost table and what the comparison is; the recall rows go into the methods table."""
    rows = [[name, fmt(r["score_p50_ms"], 2), fmt(r["build_seconds"], 1), fmt(r["load_seconds"], 2),
             fmt(r["load_rss_bytes"] / 2**20, 0), fmt(r["array_bytes"] / 2**20, 1), fmt(r["disk_bytes"] / 1e6, 1),
             fmt(r["terms"])] for name, r in [("bm25 (ours)", d["ours"]), *d["runs"].items()]]
    headers = ["index", "scoring p50 ms", "build s", "load s", "load RSS MiB", "arrays MiB", "disk MB", "terms"]
    return (f"\nBM25 side by side: ours and the `bm25s` library ({d['version']}, default tokenizer with English stop "
            f"words; with PyStemmer's English stemmer when installed) on the same {d['passages']:,} passage texts "
            f"(title: text, as the knowledge base indexes them), k1={d['k1']}, b={d['b']}, Lucene's BM25; queries one "
            "at a time, tokenizing included. Scoring alone (tokenize and score every passage, no top-k selection: "
            "the methods table's p50 less this is mostly picking the best 10), build from the texts (tokenizing "
            "included), load of the saved index and the RSS it adds, the scored postings' arrays, the saved index "
            "on disk, vocabulary terms:\n\n" + md_table(headers, rows) + "\n")

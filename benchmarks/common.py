"""Shared pieces: machine and library facts, model resolution, statistics and result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from export.versions import installed_versions

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODELS_DIR = ROOT / "models"
RANDOM_LABEL = "random-weights flan-t5-small architecture"
# Libraries whose versions decide the figures; missing ones are simply not listed.
LIBRARIES = ("onnxruntime", "numpy", "tokenizers", "starlette", "uvicorn", "pydantic", "pydantic-settings",
             "torch", "transformers", "ctranslate2", "onnx", "optimum", "httpx", "psutil", "matplotlib")


def machine_info() -> dict[str, Any]:
    """CPU model, cores and RAM: the figures mean nothing without them."""
    import psutil

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def library_versions() -> dict[str, str]:
    return installed_versions(LIBRARIES)


@dataclass(frozen=True)
class ModelChoice:
    """Which model a run used, where its Hugging Face files are, and its exported serving dirs."""

    label: str  # what the report says: RANDOM_LABEL, a hub id or a local dir
    name: str  # short name used in models/bench-<name>-*
    hf_dir: Path  # local transformers directory (config, weights, tokenizer)
    source_model: str  # what export writes as manifest["source"]["model"]

    def serving_dir(self, precision: str) -> Path:
        return MODELS_DIR / f"bench-{self.name}-{precision}"

    def describe(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def resolve_model(model: str | None, random_weights: bool) -> ModelChoice:
    """``--model`` (hub id or dir), else random weights with flan-t5-small's architecture."""
    if model and random_weights:
        raise SystemExit("benchmarks: give --model or --random-weights, not both")
    if not model:
        from export.local_models import build

        hf_dir = build("random-flan-t5-small")
        return ModelChoice(RANDOM_LABEL, "random-flan-t5-small", hf_dir, hf_dir.resolve().name)
    from export.source import ExportError, resolve

    try:
        source = resolve(model, None, os.environ.get("HF_TOKEN") or None)
    except ExportError as exc:
        raise SystemExit(f"benchmarks: {exc}") from None
    name = Path(model.rstrip("/")).name
    label = f"local dir {source.path}" if source.revision is None else f"hub {model}"
    return ModelChoice(label, name, source.path, source.model)


def ensure_serving_dirs(choice: ModelChoice, precisions: Sequence[str] = ("int8", "fp32")) -> dict[str, Path]:
    """Export each precision once into models/bench-<name>-<precision>; reuse a current export of it."""
    dirs = {}
    for precision in precisions:
        out = choice.serving_dir(precision)
        manifest = out / "manifest.json"
        if manifest.is_file():
            try:
                described = json.loads(manifest.read_text())
                # The same model, exported as today's export does (the lean encoder, cross and decoder graphs).
                if described["source"]["model"] == choice.source_model and described.get("encoder") == "lean":
                    dirs[precision] = out
                    continue
            except (OSError, ValueError, KeyError):
                pass  # unreadable or another model's: export again
        cmd = [sys.executable, "-m", "export", "--model", str(choice.hf_dir), "--out", str(out), "--min-agreement", "0"]
        if precision == "fp32":
            cmd.append("--fp32")
        log(f"exporting {choice.name} {precision} into {out} (once)")
        subprocess.run(cmd, cwd=ROOT, check=True)
        dirs[precision] = out
    return dirs


def server_timing(header: str) -> dict[str, float]:
    """Milliseconds by stage from a ``Server-Timing`` header (``name;dur=ms, ...``)."""
    parts = (p.strip().split(";dur=") for p in header.split(",") if ";dur=" in p)
    return {name: float(ms) for name, ms in parts}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def context_md(meta: dict[str, Any]) -> str:
    """The header every Markdown report starts with: model, machine, versions."""
    m = meta["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return (f"- model: **{meta['model']['label']}**\n"
            f"- machine: {m['cpu_model']}, {m['logical_cores']} logical / {m['physical_cores']} physical cores "
            f"({m['usable_cores']} usable), {m['ram_gib']} GiB RAM, Linux {m['kernel']}, Python {m['python']}\n"
            f"- libraries: {libs}\n- run: {meta['started']} ({'quick' if meta['quick'] else 'full'} mode)\n")


def run_meta(choice: ModelChoice | None, quick: bool) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "model": choice.describe() if choice else {"label": "n/a"},
        "machine": machine_info(),
        "versions": library_versions(),
    }


def write_results(suite: str, meta: dict[str, Any], data: dict[str, Any], body_md: str,
                  chart: Callable[[Any], None] | None) -> dict[str, Path]:
    """Write <suite>[-quick].json, .md and .png into benchmarks/results/; return their paths.

    ``chart`` draws on a matplotlib Figure; the Agg backend keeps it headless.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / (suite + ("-quick" if meta["quick"] else ""))
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps({"suite": suite, "meta": meta, "results": data}, indent=2, default=str) + "\n")
    md = f"# Benchmark: {suite}\n\n{context_md(meta)}\n{body_md.rstrip()}\n"
    if chart is not None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 5), layout="constrained")
        chart(fig)
        # Below the axes, outside the figure: bbox_inches="tight" grows the canvas to keep it.
        fig.text(0.99, -0.01, f"{meta['model']['label']} | {meta['machine']['cpu_model']} | {meta['started']}",
                 ha="right", va="top", fontsize=7, color="grey")
        paths["png"] = stem.with_suffix(".png")
        fig.savefig(paths["png"], dpi=110, bbox_inches="tight")
        md += f"\n![{suite}]({paths['png'].name})\n"
    paths["md"].write_text(md)
    print(body_md.rstrip(), flush=True)  # the tables on stdout too: one command shows the figures
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths

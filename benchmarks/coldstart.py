"""coldstart: seconds from spawning the server process to its first 200 from GET /health.

Ours (``python -m server``, int8 serving dir) against the old service (benchmarks/baseline_server.py:
transformers pipeline + torch), each started the same way on a free 127.0.0.1 port, interleaved.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import ModelChoice, ensure_serving_dirs, fmt, log, md_table, median, write_results
from benchmarks.procs import running_server

# --- constants -----------------------------------------------------------------------------------------
REPEATS = 5  # cold starts per server (full); the order alternates each round
QUICK_REPEATS = 2
START_TIMEOUT_S = 180.0  # a start slower than this counts as a failure, and the process is killed
KINDS = ("ours", "baseline")
# ---------------------------------------------------------------------------------------------------------


def run(choice: ModelChoice, quick: bool) -> tuple[dict[str, Any], str, Any]:
    """Run the coldstart suite; return (data, markdown body, chart function)."""
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    seconds: dict[str, list[float]] = {k: [] for k in KINDS}
    for rnd in range(QUICK_REPEATS if quick else REPEATS):
        for kind in KINDS if rnd % 2 == 0 else KINDS[::-1]:
            # The page cache is left warm on purpose: both read their files from RAM after the first round.
            with running_server(kind, choice, serving if kind == "ours" else None, START_TIMEOUT_S) as (_, s, _p):
                seconds[kind].append(s)
            log(f"coldstart {kind}: {s:.2f}s")
    stats = {k: {"median_s": median(v), "min_s": min(v), "max_s": max(v), "runs": v} for k, v in seconds.items()}
    ratio = stats["baseline"]["median_s"] / stats["ours"]["median_s"]
    data = {"servers": stats, "baseline_over_ours": ratio}
    rows = [[k, fmt(v["median_s"], 2), fmt(v["min_s"], 2), fmt(v["max_s"], 2), len(v["runs"])]
            for k, v in stats.items()]
    md = ("Spawn -> first 200 from GET /health on 127.0.0.1, median of interleaved repeats (page cache warm).\n"
          "ours: `python -m server` (ONNX Runtime int8, checksums verified); baseline: the old service "
          "(transformers pipeline, PyTorch fp32).\n\n"
          + md_table(["server", "median s", "min s", "max s", "runs"], rows)
          + f"\n\nBaseline / ours: **{ratio:.2f}x** (higher means ours starts faster)\n")

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        ax.bar(list(stats), [v["median_s"] for v in stats.values()], color=["tab:blue", "tab:grey"])
        for i, v in enumerate(stats.values()):
            ax.plot([i] * len(v["runs"]), v["runs"], "k.", alpha=0.6)
        ax.set_ylabel("seconds to first 200 from /health")
        ax.set_title("Cold start (bars: median, dots: runs)")

    return data, md, draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks coldstart``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick)
    write_results("coldstart", meta, data, body, chart)
    return {"coldstart: baseline / ours, seconds to healthy (speed-up)": data["baseline_over_ours"],
            "coldstart: ours, seconds": data["servers"]["ours"]["median_s"]}

"""footprint: what a deployment carries. Fresh venvs for our runtime deps vs the old torch stack, and the
model bytes on disk (fp32 vs int8, from the serving dirs' manifests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common import ModelChoice, ensure_serving_dirs, fmt, log, md_table, write_results

# --- constants -----------------------------------------------------------------------------------------
# What `python -m server` needs, installed exactly as the runtime image does it.
ROOT = Path(__file__).resolve().parent.parent
OURS = ["--no-deps", "-r", str(ROOT / "requirements" / "image.txt")]
PRUNE = ROOT / "scripts" / "prune_runtime.sh"
# The old service: torch (the CPU build this machine's pip installs for ==2.13.0) + transformers + web.
# torch stays pinned to 2.13.0: an unpinned torch would pull a multi-GB CUDA build.
BASELINE = ("torch==2.13.0", "transformers", "starlette", "uvicorn")
PIP_TIMEOUT_S = 1200.0  # per venv; installs read the local wheel dir and PyPI
MB = 1e6
# ---------------------------------------------------------------------------------------------------------


def pinned(names: tuple[str, ...]) -> list[str]:
    """``name==version`` for each name, using this venv's version unless the name is pinned already."""
    return [n if "==" in n else f"{n}=={metadata.version(n)}" for n in names]


def tree_bytes(root: Path) -> int:
    """Bytes of regular files under ``root`` (symlinks not followed, so nothing counts twice)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def venv_bytes(requirements: list[str], prune: bool = False) -> dict[str, Any]:
    """Create a throw-away venv, pip install ``requirements`` (then prune as the image does), measure
    site-packages; always delete it."""
    work = Path(tempfile.mkdtemp(prefix="bench-venv-"))
    try:
        # The base interpreter, not this venv's: a fresh venv must not inherit anything.
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(work / "venv")],
                       check=True, timeout=120)
        py = work / "venv" / "bin" / "python"
        empty = tree_bytes(next((work / "venv" / "lib").glob("python*/site-packages")))
        log(f"footprint: pip install {' '.join(requirements)}")
        done = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                              capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if done.returncode != 0:  # pip's own words, without the pages of index warnings
            raise RuntimeError(f"pip install failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
        site = next((work / "venv" / "lib").glob("python*/site-packages"))
        if prune:
            subprocess.run(["bash", str(PRUNE), str(site)], check=True, timeout=120)
        shown = [r.removeprefix(str(ROOT) + "/") for r in requirements] + (["+ prune"] if prune else [])
        return {"requirements": shown, "site_packages_bytes": tree_bytes(site),
                "installed_over_empty_bytes": tree_bytes(site) - empty, "venv_bytes": tree_bytes(work / "venv")}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def model_bytes(serving: Path) -> dict[str, int]:
    import json

    files = json.loads((serving / "manifest.json").read_text())["files"]
    onnx = sum(f["bytes"] for n, f in files.items() if n.endswith(".onnx"))
    return {"onnx_bytes": onnx, "total_bytes": sum(f["bytes"] for f in files.values())}


def run(choice: ModelChoice, quick: bool, skip_venv: bool) -> tuple[dict[str, Any], str, Any]:
    """Run the footprint suite; return (data, markdown body, chart function)."""
    dirs = ensure_serving_dirs(choice)
    models = {f"serving dir {p}": model_bytes(d) for p, d in dirs.items()}
    weights = sum(p.stat().st_size for p in choice.hf_dir.glob("*.safetensors")) or sum(
        p.stat().st_size for p in choice.hf_dir.glob("*.bin"))
    models["transformers checkpoint (old service)"] = {"onnx_bytes": 0, "total_bytes": tree_bytes(choice.hf_dir),
                                                      "weights_bytes": weights}
    venvs = {} if skip_venv else {"ours": venv_bytes(OURS, prune=True),
                                        "baseline": venv_bytes(pinned(BASELINE))}
    data: dict[str, Any] = {"models": models, "venvs": venvs}
    md = "Model files on disk (serving dirs: from their manifests):\n\n" + md_table(
        ["model", "ONNX MB", "total MB"],
        [[k, fmt(v["onnx_bytes"] / MB) if v["onnx_bytes"] else "-", fmt(v["total_bytes"] / MB)]
         for k, v in models.items()])
    int8, fp32 = models["serving dir int8"]["onnx_bytes"], models["serving dir fp32"]["onnx_bytes"]
    data["fp32_over_int8"] = fp32 / int8
    md += f"\n\nfp32 / int8 ONNX bytes: **{fp32 / int8:.2f}x**\n"
    if venvs:
        data["baseline_over_ours"] = venvs["baseline"]["site_packages_bytes"] / venvs["ours"]["site_packages_bytes"]
        md += ("\nFresh venvs (python -m venv + pip install; ours exactly as the runtime image installs it), "
               "site-packages bytes:\n\n"
               + md_table(["venv", "requirements", "site-packages MB", "whole venv MB"],
                          [[k, " ".join(v["requirements"]), fmt(v["site_packages_bytes"] / MB),
                            fmt(v["venv_bytes"] / MB)] for k, v in venvs.items()])
               + f"\n\nBaseline / ours site-packages: **{data['baseline_over_ours']:.2f}x**\n")
    else:
        md += "\nVenvs not measured (--skip-venv).\n"

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2 if venvs else 1, squeeze=False)[0]
        axes[0].bar(["int8", "fp32"], [int8 / MB, fp32 / MB], color=["tab:blue", "tab:grey"])
        axes[0].set_title("ONNX model bytes (MB)", fontsize=10)
        if venvs:
            axes[1].bar(list(venvs), [v["site_packages_bytes"] / MB for v in venvs.values()],
                        color=["tab:blue", "tab:grey"])
            axes[1].set_title("site-packages of a fresh venv (MB)", fontsize=10)
        fig.suptitle("Footprint")

    return data, md, draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks footprint``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick, args.skip_venv)
    write_results("footprint", meta, data, body, chart)
    out = {"footprint: fp32 / int8 model bytes (ratio)": data["fp32_over_int8"]}
    if "baseline_over_ours" in data:
        out["footprint: baseline / ours venv bytes (ratio)"] = data["baseline_over_ours"]
    return out

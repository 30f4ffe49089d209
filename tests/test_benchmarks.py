"""The benchmark suite runs end to end (figures are checked by reading them, not by asserting speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_decode_benchmark_runs_and_states_its_model(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "decode", "--random-weights", "--quick",
                           "--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "decode-quick.json").read_text())
    shapes = report["results"]["shapes"]
    engines = {name.split(" ")[0] for name in shapes["grounded"]["batches"]["8"]}
    assert {"pytorch-fp32", "onnx-fp32", "onnx-int8", "ctranslate2-int8"} <= engines
    assert min(shapes["grounded"]["prompt_tokens"]) > 10 * max(shapes["short"]["prompt_tokens"]) // 2
    assert report["meta"]["model"]["label"] == "random-weights flan-t5-small architecture"


@pytest.mark.slow
def test_retrieval_benchmark_runs_on_a_slice_of_botocore(minilm: Path, int8_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "retrieval", "--quick", "--results", str(tmp_path),
                           "--tokenizer", str(int8_dir / "tokenizer.json"), "--embedder", str(minilm),
                           "--skip-reference", "--skip-stages"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "retrieval-quick.json").read_text())["results"]
    assert set(report["methods"]) == {"hybrid", "dense", "bm25"}
    assert report["knowledge"]["sources"]["botocore"]["services"] == 10

"""`python -m export` on the tiny model: what it writes, and how it refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from server.serving_dir import describe_files
from tests.conftest import run_export


def manifest(serving: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((serving / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_manifest_lists_every_file_with_its_checksum(int8_dir: Path) -> None:
    written = manifest(int8_dir)
    assert written["files"] == describe_files(int8_dir)
    assert sorted(written["files"]) == ["decoder_cross_model.onnx", "decoder_with_past_model.onnx",
                                        "encoder_model.onnx", "generation.json", "tokenizer.json"]


def test_manifest_records_source_versions_and_quantization(int8_dir: Path, tiny_model: Path) -> None:
    written = manifest(int8_dir)
    assert written["source"] == {"model": tiny_model.name, "revision": None, "path": str(tiny_model)}
    assert {"onnxruntime", "optimum", "torch", "transformers"} <= set(written["libraries"])
    assert written["quantization"]["per_channel"] is True


def test_int8_validation_figures_pass_the_threshold(int8_dir: Path) -> None:
    validation = manifest(int8_dir)["validation"]
    assert validation["top1_agreement"] >= 0.9
    assert validation["positions"] > 100


def test_every_graph_is_really_quantized(int8_dir: Path, fp32_dir: Path) -> None:
    for name in ("encoder_model.onnx", "decoder_cross_model.onnx", "decoder_with_past_model.onnx"):
        assert (int8_dir / name).stat().st_size < 0.5 * (fp32_dir / name).stat().st_size
        ops = {node.op_type for node in onnx.load(str(int8_dir / name)).graph.node}
        assert "MatMul" not in ops or "MatMulInteger" in ops or "DynamicQuantizeLinear" in ops


def test_fp32_export_matches_pytorch_exactly(fp32_dir: Path) -> None:
    written = manifest(fp32_dir)
    assert (written["precision"], written["quantization"]) == ("fp32", None)
    assert written["validation"]["top1_agreement"] == 1.0


def test_a_model_that_is_not_t5_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    done = run_export("--model", str(tmp_path / "bert"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == "export: error: bert is a bert, not a T5: only T5 models are supported"
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_path_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    done = run_export("--model", str(tiny_model), "--out", str(tmp_path / "file" / "serving"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"export: error: cannot write to {tmp_path / 'file'}")


def test_an_unreachable_hub_is_one_clear_line(tmp_path: Path) -> None:
    # Port 9 on loopback refuses at once, like a hub behind a closed network.
    done = run_export("--model", "google/flan-t5-small", "--out", str(tmp_path / "out"),
                      HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "export: error: the Hugging Face hub is unreachable and google/flan-t5-small is not in the local cache")
    assert not (tmp_path / "out").exists()


def test_a_failed_validation_leaves_nothing_behind(tiny_model: Path, tmp_path: Path) -> None:
    done = run_export("--model", str(tiny_model), "--out", str(tmp_path / "out"), "--min-agreement", "1.01")
    assert done.returncode == 1
    assert "export: error: validation failed: top-1 agreement" in done.stderr
    assert list(tmp_path.iterdir()) == []

"""The hand-built decoder-with-past graph against Optimum's traced one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


def padded_feed(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Three rows; row 1 has 3 left-padded cache slots and row 2 two right-padded source tokens."""
    rng = np.random.default_rng(0)
    batch, past, source = 3, 7, 9
    feed = {"input_ids": rng.integers(2, 100, (batch, 1)), "attention_mask": np.ones((batch, past + 1), np.int64),
            "encoder_attention_mask": np.ones((batch, source), np.int64)}
    feed["attention_mask"][1, :3] = 0
    feed["encoder_attention_mask"][2, 7:] = 0
    for arg in session.get_inputs():
        if arg.name.startswith("past_key_values"):
            length = past if ".decoder." in arg.name else source
            feed[arg.name] = rng.normal(size=(batch, arg.shape[1], length, arg.shape[3])).astype(np.float32)
    return feed


def test_lean_graph_computes_what_optimum_computes(fp32_dir: Path, optimum_fp32_dir: Path) -> None:
    lean = ort.InferenceSession(str(fp32_dir / "decoder_with_past_model.onnx"))
    traced = ort.InferenceSession(str(optimum_fp32_dir / "decoder_with_past_model.onnx"))
    feed = padded_feed(traced)
    names = [o.name for o in traced.get_outputs()]
    for ours, theirs in zip(lean.run(names, feed), traced.run(names, feed), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_lean_graph_has_a_fraction_of_the_nodes(fp32_dir: Path, optimum_fp32_dir: Path) -> None:
    import onnx

    def count(d: Path) -> int:
        return len(onnx.load(str(d / "decoder_with_past_model.onnx"), load_external_data=False).graph.node)

    assert count(fp32_dir) * 4 < count(optimum_fp32_dir)


def test_cross_graph_and_an_empty_past_compute_optimums_first_step(fp32_dir: Path, optimum_fp32_dir: Path) -> None:
    from server.generation.engine import Engine
    from server.serving_dir import open_serving_dir

    prompts = [[5, 6, 7, 8, 9, 1], [10, 11, 1]]  # of two lengths: the source is padded and masked
    lean_logits, lean = Engine(open_serving_dir(fp32_dir), 1).prefill(prompts)
    traced_logits, traced = Engine(open_serving_dir(optimum_fp32_dir), 1).prefill(prompts)
    np.testing.assert_allclose(lean_logits, traced_logits, atol=1e-4)
    for ours, theirs in zip(lean.cross_kv + lean.self_kv, traced.cross_kv + traced.self_kv, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_the_decoders_weights_are_stored_once(fp32_dir: Path) -> None:
    sizes = {p.name: p.stat().st_size for p in fp32_dir.glob("*.onnx")}
    assert "decoder_model.onnx" not in sizes
    assert sizes["decoder_cross_model.onnx"] * 4 < sizes["decoder_with_past_model.onnx"]

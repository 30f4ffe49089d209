"""The hand-built encoder graph against Optimum's traced one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def test_lean_encoder_computes_what_optimum_computes(fp32_dir: Path, optimum_fp32_dir: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 100, (2, 150))  # past T5's max_distance of 128: clamped distances are exercised
    mask = np.ones_like(ids)
    ids[1, 60:], mask[1, 60:] = 0, 0  # a shorter row, right-padded and masked
    feed = {"input_ids": ids, "attention_mask": mask}
    (ours,) = ort.InferenceSession(str(fp32_dir / "encoder_model.onnx")).run(None, feed)
    (theirs,) = ort.InferenceSession(str(optimum_fp32_dir / "encoder_model.onnx")).run(None, feed)
    np.testing.assert_allclose(ours[mask == 1], theirs[mask == 1], atol=1e-4)


def test_lean_encoder_has_a_fraction_of_the_nodes(fp32_dir: Path, optimum_fp32_dir: Path) -> None:
    def count(d: Path) -> int:
        return len(onnx.load(str(d / "encoder_model.onnx"), load_external_data=False).graph.node)

    assert count(fp32_dir) * 4 < count(optimum_fp32_dir)

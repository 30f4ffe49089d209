"""Optimum's ONNX export of T5 with a key/value cache and a decoder attention mask.

Optimum's stock T5 export has no decoder attention mask, so every row of a
batch would have to share one decoding position. Adding the mask (as Optimum
already does for Pix2Struct) lets rows that joined a batch at different
times be left-padded and masked, which is what continuous batching needs.
The decoder is kept as two graphs (first step, and with past) instead of
Optimum's merged one: no If node per step, and weights that ONNX Runtime's
quantizer reaches without subgraph support.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimum.exporters.onnx import main_export
from optimum.exporters.onnx.base import ConfigBehavior
from optimum.exporters.onnx.model_configs import T5OnnxConfig

LEAN_FILES = ("encoder_model.onnx", "decoder_cross_model.onnx", "decoder_with_past_model.onnx")
OPTIMUM_FILES = ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx")


class MaskedT5OnnxConfig(T5OnnxConfig):  # type: ignore[misc]
    """T5 whose decoder also takes ``decoder_attention_mask`` over past + current tokens."""

    PAD_ATTENTION_MASK_TO_PAST = True

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        inputs: dict[str, dict[int, str]] = super().inputs
        if self._behavior is ConfigBehavior.DECODER:
            length = "past_decoder_sequence_length + 1" if self.use_past_in_inputs else "decoder_sequence_length"
            inputs["decoder_attention_mask"] = {0: "batch_size", 1: length}
        return inputs


def export_onnx(model_dir: Path, out: Path, lean: bool = True, opset: int | None = None) -> list[Path]:
    """Export the PyTorch T5 in ``model_dir`` to fp32 ONNX files in ``out``; return them.

    With ``lean``, Optimum's encoder and decoder-with-past are replaced by the hand-built graphs of
    :mod:`export.lean_encoder` and :mod:`export.lean_decoder` (same inputs and outputs, fused attention,
    a fraction of the nodes), and Optimum's
    first-step decoder, a second copy of every decoder weight, by a small graph that only computes
    the cross-attention keys and values: the first step is then the with-past graph with an empty past.
    """
    from transformers import AutoConfig, T5ForConditionalGeneration

    from export.lean_decoder import build_cross_kv, build_decoder_with_past
    from export.lean_encoder import build_encoder

    config = AutoConfig.from_pretrained(model_dir)
    base = MaskedT5OnnxConfig(config, task="text2text-generation", use_past=True)
    configs: dict[str, Any] = {
        "encoder_model": base.with_behavior("encoder"),
        "decoder_model": base.with_behavior("decoder", use_past=True, use_past_in_inputs=False),
        "decoder_with_past_model": base.with_behavior("decoder", use_past=True, use_past_in_inputs=True),
    }
    main_export(
        str(model_dir), out, task="text2text-generation-with-past", opset=opset,
        custom_onnx_configs=configs, no_post_process=True, do_validation=False, library_name="transformers",
    )
    if not lean:
        return [out / name for name in OPTIMUM_FILES]
    model = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
    build_encoder(model, out / "encoder_model.onnx")
    build_decoder_with_past(model, out / "decoder_with_past_model.onnx")
    build_cross_kv(model, out / "decoder_cross_model.onnx")
    (out / "decoder_model.onnx").unlink()
    return [out / name for name in LEAN_FILES]

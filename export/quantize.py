"""Dynamic int8 quantization with ONNX Runtime, checked by file size."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic


@dataclass(frozen=True)
class QuantConfig:
    """What gets quantized, recorded in the manifest."""

    weight_type: str = "int8"  # signed weights: the fast u8 x s8 path of AVX-512 VNNI
    per_channel: bool = True  # one scale per output column keeps T5's outlier columns apart
    op_types: tuple[str, ...] = ("MatMul", "Gather")  # Gather: the embedding tables shrink too
    # MatMul nodes kept in fp32, matched as regular expressions on node names.
    keep_fp32: tuple[str, ...] = field(default_factory=tuple)

    def as_manifest(self) -> dict[str, Any]:
        return {"method": "onnxruntime.quantize_dynamic", **asdict(self)}


class QuantizationError(Exception):
    """Quantization left a graph as big as it was: its weights were not reached."""


def quantize_file(src: Path, dst: Path, cfg: QuantConfig) -> None:
    """Quantize one ONNX file; fail if it did not shrink to well under half."""
    graph = onnx.load(str(src), load_external_data=False).graph
    excluded = [n.name for n in graph.node
                if (n.op_type == "MatMul" and any(re.search(p, n.name) for p in cfg.keep_fp32))
                # T5's relative attention bias table (buckets x heads) is tiny: int8 would save
                # nothing and only blur the position bias of every attention layer.
                or (n.op_type == "Gather" and "relative_attention_bias" in n.name)]
    quantize_dynamic(
        src, dst,
        op_types_to_quantize=list(cfg.op_types),
        per_channel=cfg.per_channel,
        weight_type=QuantType.QInt8 if cfg.weight_type == "int8" else QuantType.QUInt8,
        nodes_to_exclude=excluded,
        # Reach into subgraphs too, should a graph ever carry its weights inside If branches.
        # Outputs of contrib ops (MultiHeadAttention) have no inferred type: they are fp32.
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True,
                       "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    before, after = src.stat().st_size, dst.stat().st_size
    if after > 0.5 * before:
        raise QuantizationError(f"{src.name}: {before} -> {after} bytes; its weights were not quantized")

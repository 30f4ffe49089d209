"""A lean ONNX graph for T5's decoder step with past, built straight from the PyTorch weights.

Optimum's traced decoder-with-past is ~530 nodes after ONNX Runtime's own
fusions, most of them shape arithmetic and attention plumbing; at one token
per step those small nodes cost as much as the matrix products. This graph
does the same maths with ~110 nodes:

* ONNX Runtime's ``MultiHeadAttention`` (scale 1, as T5 does not scale) with
  the past keys/values in and the grown ones out;
* q, k and v in one MatMul, and the gated feed-forward's two input
  projections in one MatMul (fewer, larger int8 products);
* the relative position bias read from a table indexed by distance, built here
  with transformers' own bucket function, since the decoder's bias only
  depends on how far back a key is.

Inputs and outputs keep Optimum's names, so the engine runs either graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NEG = -1e9  # additive mask: exp() of it is exactly 0 in fp32, without the inf arithmetic of finfo.min


class _Graph:
    """Collects nodes and initializers with unique names; builds T5's pieces from ``state`` (its weights)."""

    def __init__(self, state: dict[str, Any] | None = None, eps: float = 0.0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.state = state or {}
        self.eps = eps

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op: str, inputs: list[str], name: str, outputs: int = 1, domain: str = "", **attrs: Any) -> list[str]:
        outs = [f"{name}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs

    def one(self, op: str, inputs: list[str], name: str, domain: str = "", **attrs: Any) -> str:
        return self.op(op, inputs, name, 1, domain, **attrs)[0]

    def norm(self, x: str, key: str, name: str) -> str:
        """T5's RMS norm (no mean, no bias) with the weight ``key``."""
        return self.one("SimplifiedLayerNormalization", [x, self.const(key, _w(self.state, key))], name,
                        axis=-1, epsilon=self.eps)

    def linear(self, x: str, keys: list[str], name: str) -> str:
        """``x`` times the weights ``keys``, side by side: several projections of one input share a MatMul."""
        # PyTorch keeps [out, in]; MatMul wants [in, out].
        weight = np.concatenate([_w(self.state, k).T for k in keys], axis=1)
        return self.one("MatMul", [x, self.const(f"{name}.weight", np.ascontiguousarray(weight))], f"{name}/MatMul")

    def embed(self, ids: str) -> str:
        return self.one("Gather", [self.const("shared.weight", _w(self.state, "shared.weight")), ids], "embed", axis=0)

    def feed_forward(self, x: str, w: str, n: str, d_ff: int) -> str:
        """The gated feed-forward block with its residual: x + wo(gelu(h wi_0) * (h wi_1)), h = norm(x)."""
        h = self.norm(x, f"{w}.layer_norm.weight", f"{n}/norm")
        wi = self.linear(h, [f"{w}.DenseReluDense.wi_0.weight", f"{w}.DenseReluDense.wi_1.weight"],
                         f"{n}/DenseReluDense/wi")
        gate, up = self.op("Split", [wi, self.const(f"{n}/ffsplit", np.array([d_ff, d_ff], np.int64))],
                           f"{n}/Split", outputs=2, axis=-1)
        act = self.one("Mul", [self.one("FastGelu", [gate], f"{n}/Gelu", domain="com.microsoft"), up], f"{n}/Gate")
        return self.one("Add", [x, self.linear(act, [f"{w}.DenseReluDense.wo.weight"], f"{n}/DenseReluDense/wo")],
                        f"{n}/Residual")


def _w(state: dict[str, Any], key: str) -> np.ndarray:
    return np.ascontiguousarray(state[key].detach().float().numpy())


def _position_table(model: Any) -> tuple[np.ndarray, int]:
    """Bias per head for each distance 0..max_distance back; larger distances share the last bucket."""
    import torch

    attn = model.decoder.block[0].layer[0].SelfAttention
    cfg = model.config
    distance = torch.arange(cfg.relative_attention_max_distance + 1)
    buckets = attn._relative_position_bucket(-distance, bidirectional=False,
                                             num_buckets=cfg.relative_attention_num_buckets,
                                             max_distance=cfg.relative_attention_max_distance)
    table = attn.relative_attention_bias.weight.detach().float()[buckets]  # [distance, heads]
    return np.ascontiguousarray(table.numpy()), int(cfg.relative_attention_max_distance)


def build_decoder_with_past(model: Any, out: Path) -> None:
    """Write the decoder-with-past graph of a ``T5ForConditionalGeneration`` to ``out``."""
    cfg = model.config
    state = model.state_dict()
    heads, d_kv, layers = cfg.num_heads, cfg.d_kv, cfg.num_decoder_layers
    g = _Graph(state, float(cfg.layer_norm_epsilon))
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", i64, ["batch", 1]),
              helper.make_tensor_value_info("attention_mask", i64, ["batch", "past_plus_1"]),
              helper.make_tensor_value_info("encoder_attention_mask", i64, ["batch", "source"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch", 1, cfg.vocab_size])]
    for i in range(layers):
        for kind, length in (("decoder", "past"), ("encoder", "source")):
            for kv in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}.{kv}", f32,
                                                            ["batch", heads, length, d_kv]))
        for kv in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(f"present.{i}.decoder.{kv}", f32,
                                                         ["batch", heads, "past_plus_1", d_kv]))

    # Masks become additive biases: 0 where a key is real, NEG where it is padding.
    one, neg = g.const("one", np.array(1.0, np.float32)), g.const("neg", np.array(NEG, np.float32))

    def mask_bias(mask: str, name: str) -> str:
        flipped = g.one("Sub", [one, g.one("Cast", [mask], f"{name}/Cast", to=f32)], f"{name}/Sub")
        scaled = g.one("Mul", [flipped, neg], f"{name}/Mul")
        return g.one("Unsqueeze", [scaled, g.const(f"{name}/axes", np.array([1, 2], np.int64))], f"{name}/Unsqueeze")

    # Self-attention bias: the new token is at position `past`; key j is `past - j` back.
    table, max_distance = _position_table(model)
    past_len = g.one("Gather", [g.one("Shape", ["past_key_values.0.decoder.key"], "pos/Shape"),
                                g.const("pos/two", np.array(2, np.int64))], "pos/Past", axis=0)
    steps = g.one("Range", [g.const("pos/zero", np.array(0, np.int64)),
                            g.one("Add", [past_len, g.const("pos/one", np.array(1, np.int64))], "pos/Total"),
                            g.const("pos/step", np.array(1, np.int64))], "pos/Range")
    back = g.one("Min", [g.one("Sub", [past_len, steps], "pos/Back"),
                         g.const("pos/max", np.array(max_distance, np.int64))], "pos/Clamp")
    by_head = g.one("Transpose", [g.one("Gather", [g.const("pos/table", table), back], "pos/Lookup", axis=0)],
                    "pos/Transpose", perm=[1, 0])
    position = g.one("Unsqueeze", [by_head, g.const("pos/axes", np.array([0, 2], np.int64))], "pos/Unsqueeze")
    self_bias = g.one("Add", [position, mask_bias("attention_mask", "self_mask")], "self_bias")
    cross_bias = mask_bias("encoder_attention_mask", "cross_mask")

    x = g.embed("input_ids")
    for i in range(layers):
        w, n = f"decoder.block.{i}.layer", f"/decoder/block.{i}/layer"  # weight keys, node names
        # Self-attention over the cache plus this token; the grown cache is the step's output.
        h = g.norm(x, f"{w}.0.layer_norm.weight", f"{n}.0/norm")
        qkv = g.linear(h, [f"{w}.0.SelfAttention.{m}.weight" for m in "qkv"], f"{n}.0/SelfAttention/qkv")
        q, k, v = g.op("Split", [qkv, g.const(f"split{i}", np.array([heads * d_kv] * 3, np.int64))],
                       f"{n}.0/Split", outputs=3, axis=-1)
        attn, present_k, present_v = g.op(
            "MultiHeadAttention", [q, k, v, "", "", self_bias, f"past_key_values.{i}.decoder.key",
                                   f"past_key_values.{i}.decoder.value"],
            f"{n}.0/MHA", outputs=3, domain="com.microsoft", num_heads=heads, scale=1.0)
        g.nodes.append(helper.make_node("Identity", [present_k], [f"present.{i}.decoder.key"]))
        g.nodes.append(helper.make_node("Identity", [present_v], [f"present.{i}.decoder.value"]))
        proj = g.linear(attn, [f"{w}.0.SelfAttention.o.weight"], f"{n}.0/SelfAttention/o")
        x = g.one("Add", [x, proj], f"{n}.0/Residual")
        # Cross-attention: keys and values were computed once, by the first step.
        h = g.norm(x, f"{w}.1.layer_norm.weight", f"{n}.1/norm")
        q = g.linear(h, [f"{w}.1.EncDecAttention.q.weight"], f"{n}.1/EncDecAttention/q")
        attn = g.one("MultiHeadAttention", [q, f"past_key_values.{i}.encoder.key",
                                            f"past_key_values.{i}.encoder.value", "", "", cross_bias],
                     f"{n}.1/MHA", domain="com.microsoft", num_heads=heads, scale=1.0)
        proj = g.linear(attn, [f"{w}.1.EncDecAttention.o.weight"], f"{n}.1/EncDecAttention/o")
        x = g.one("Add", [x, proj], f"{n}.1/Residual")
        x = g.feed_forward(x, f"{w}.2", f"{n}.2", cfg.d_ff)  # gated: gelu(h wi_0) * (h wi_1), then wo
    x = g.norm(x, "decoder.final_layer_norm.weight", "/decoder/final_layer_norm")
    if cfg.tie_word_embeddings:  # T5 v1.0 rescales before a head tied to the embedding
        x = g.one("Mul", [x, g.const("head_scale", np.array(cfg.d_model ** -0.5, np.float32))], "/lm_head/scale")
    head = g.const("lm_head.weight", np.ascontiguousarray(_w(state, "lm_head.weight").T))
    g.nodes.append(helper.make_node("MatMul", [x, head], ["logits"], name="/lm_head/MatMul"))
    graph = helper.make_graph(g.nodes, "t5_decoder_with_past_lean", inputs, outputs, g.inits)
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                          helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model_proto, str(out))


def build_cross_kv(model: Any, out: Path) -> None:
    """Write the graph that turns the encoder's output into every decoder layer's cross-attention keys and
    values, once per request: with it, the first decoder step is the with-past graph run with an empty
    past, and the decoder's weights are stored (and loaded) once instead of twice.

    All layers' key and value projections are one MatMul (``[d_model, 2 * layers * heads * d_kv]``), split
    and laid out ``[batch, heads, source, d_kv]`` as the with-past graph reads them.
    """
    cfg = model.config
    state = model.state_dict()
    heads, d_kv, layers = cfg.num_heads, cfg.d_kv, cfg.num_decoder_layers
    g = _Graph()
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("encoder_hidden_states", f32, ["batch", "source", cfg.d_model])]
    outputs = [helper.make_tensor_value_info(f"present.{i}.encoder.{kv}", f32, ["batch", heads, "source", d_kv])
               for i in range(layers) for kv in ("key", "value")]
    keys = [f"decoder.block.{i}.layer.1.EncDecAttention.{m}.weight" for i in range(layers) for m in "kv"]
    weight = np.ascontiguousarray(np.concatenate([_w(state, k).T for k in keys], axis=1))
    projected = g.one("MatMul", ["encoder_hidden_states", g.const("cross_kv.weight", weight)], "/cross_kv/MatMul")
    parts = g.op("Split", [projected, g.const("cross_kv/split", np.array([heads * d_kv] * 2 * layers, np.int64))],
                 "/cross_kv/Split", outputs=2 * layers, axis=-1)
    shape = g.const("cross_kv/shape", np.array([0, 0, heads, d_kv], np.int64))  # 0: keep batch and source
    for part, name in zip(parts, (o.name for o in outputs), strict=True):
        split_heads = g.one("Reshape", [part, shape], f"/cross_kv/{name}/Reshape")
        g.nodes.append(helper.make_node("Transpose", [split_heads], [name], name=f"/cross_kv/{name}/Transpose",
                                        perm=[0, 2, 1, 3]))
    graph = helper.make_graph(g.nodes, "t5_decoder_cross_kv", inputs, outputs, g.inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(out))

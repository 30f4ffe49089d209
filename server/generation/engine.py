"""ONNX Runtime sessions for T5 and the batched decoder state they share.

The engine only runs model passes on batches: encode + first decoder step
(:meth:`Engine.prefill`) and one more token for every row
(:meth:`Engine.step`). Choosing tokens, stopping and scheduling belong to the
batcher.

Rows of one batch may have started at different times. Their self-attention
caches are left-padded to a common length and the padding is masked out;
T5's relative position bias only sees distances between the query and real
keys, which left padding does not change, so a row decodes the same alone or
batched. Encoder outputs are right-padded and masked the same way.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server import serving_dir as sd

Array = np.ndarray


def usable_cpus() -> int:
    """CPUs this process may use: its affinity (taskset), capped by a cgroup v2 CPU quota (a container's
    or a Fargate task's vCPUs, which the affinity and ONNX Runtime's own count of cores do not show)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 here: the affinity is all there is
        pass
    return count


def session_options(num_threads: int) -> ort.SessionOptions:
    """Options shared by the three sessions; ``num_threads`` 0 means one per usable CPU."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # More threads than CPUs only makes the pool's barriers wait on threads that are not running.
    opts.intra_op_num_threads = num_threads or usable_cpus()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Pool threads spin between the operators of one run (each waits microseconds for the next), but
    # not after it: spinning on between steps took a core from the batcher's own Python and the event
    # loop. Measured over HTTP, 16 clients, 2 vCPUs: 36 -> 52 requests/s; one at a time 6.5 -> 11.3.
    opts.add_session_config_entry("session.force_spinning_stop", "1")
    return opts


@dataclass
class DecoderState:
    """Everything the decoder needs to add one token to each row of a batch.

    ``self_kv`` holds, per layer, the key then the value of self-attention,
    each ``[batch, heads, past, d_kv]``; ``cross_kv`` the same for
    cross-attention over the encoder output, ``[batch, heads, source, d_kv]``.
    """

    self_kv: list[Array]
    cross_kv: list[Array]
    self_mask: Array  # [batch, past] int64, 0 where left padding
    enc_mask: Array  # [batch, source] int64, 0 where right padding

    @property
    def size(self) -> int:
        return int(self.self_mask.shape[0])

    def select(self, rows: list[int]) -> DecoderState:
        """Keep only ``rows`` (finished sequences leave), then drop all-padding columns."""
        idx = np.asarray(rows, dtype=np.int64)
        state = DecoderState(
            self_kv=[a[idx] for a in self.self_kv],
            cross_kv=[a[idx] for a in self.cross_kv],
            self_mask=self.self_mask[idx],
            enc_mask=self.enc_mask[idx],
        )
        return state.trimmed()

    def trimmed(self) -> DecoderState:
        """Drop leading self columns and trailing source columns that no row uses."""
        used = np.flatnonzero(self.self_mask.any(axis=0))
        first = int(used[0]) if used.size else 0
        used_src = np.flatnonzero(self.enc_mask.any(axis=0))
        last = int(used_src[-1]) + 1 if used_src.size else self.enc_mask.shape[1]
        if first == 0 and last == self.enc_mask.shape[1]:
            return self
        return DecoderState(
            self_kv=[a[:, :, first:] for a in self.self_kv],
            cross_kv=[a[:, :, :last] for a in self.cross_kv],
            self_mask=self.self_mask[:, first:],
            enc_mask=self.enc_mask[:, :last],
        )

    @staticmethod
    def concat(a: DecoderState, b: DecoderState) -> DecoderState:
        """Join two batches: pad self caches on the left, encoder outputs on the right."""
        past = max(a.self_mask.shape[1], b.self_mask.shape[1])
        src = max(a.enc_mask.shape[1], b.enc_mask.shape[1])

        def join(x: Array, y: Array, length: int, left: bool) -> Array:
            return np.concatenate([_pad(x, length, axis=-2 if x.ndim == 4 else 1, left=left),
                                   _pad(y, length, axis=-2 if y.ndim == 4 else 1, left=left)])

        return DecoderState(
            self_kv=[join(x, y, past, True) for x, y in zip(a.self_kv, b.self_kv, strict=True)],
            cross_kv=[join(x, y, src, False) for x, y in zip(a.cross_kv, b.cross_kv, strict=True)],
            self_mask=join(a.self_mask, b.self_mask, past, True),
            enc_mask=join(a.enc_mask, b.enc_mask, src, False),
        )


def _pad(x: Array, length: int, axis: int, left: bool) -> Array:
    missing = length - x.shape[axis]
    if missing == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (missing, 0) if left else (0, missing)
    return np.pad(x, widths)


class Engine:
    """The three ONNX Runtime sessions of a serving directory: encoder, first step, decoder step.

    The first step is either the cross graph (keys and values of every layer's cross-attention, then
    the step graph with an empty past: the decoder's weights are loaded once) or, in serving
    directories exported with ``--decoder optimum``, Optimum's own first-step decoder.
    """

    def __init__(self, serving: sd.ServingDir, num_threads: int = 0, options: ort.SessionOptions | None = None) -> None:
        opts = options or session_options(num_threads)  # other options: the profiler's, for one
        providers = ["CPUExecutionProvider"]

        def session(name: str) -> ort.InferenceSession:
            return ort.InferenceSession(str(serving.file(name)), opts, providers=providers)

        self.encoder = session(sd.ENCODER)
        self.decoder_past = session(sd.DECODER_WITH_PAST)
        self.cross = session(sd.CROSS) if sd.CROSS in serving.manifest["files"] else None
        self.decoder = session(sd.DECODER) if self.cross is None else None
        self.start_id = serving.generation.decoder_start_token_id
        self.pad_id = serving.generation.pad_token_id
        self.num_layers = sum(1 for o in self.decoder_past.get_outputs() if o.name.endswith(".decoder.key"))
        # The empty cache's shape: heads and d_kv, as the cross graph lays its outputs out.
        self._heads, self._d_kv = (int(d) for d in self.cross.get_outputs()[0].shape[1::2]) if self.cross else (0, 0)
        layers = range(self.num_layers)
        # Outputs asked for by name, so their order is ours and not the exporter's.
        self._self_out = [f"present.{i}.decoder.{kv}" for i in layers for kv in ("key", "value")]
        self._cross_out = [f"present.{i}.encoder.{kv}" for i in layers for kv in ("key", "value")]
        self._self_in = [f"past_key_values.{i}.decoder.{kv}" for i in layers for kv in ("key", "value")]
        self._cross_in = [f"past_key_values.{i}.encoder.{kv}" for i in layers for kv in ("key", "value")]

    @property
    def joins_a_step(self) -> bool:
        """Whether new rows can take their first step inside the running batch's step (:meth:`encode`)."""
        return self.cross is not None

    def _encode_ids(self, prompts: list[list[int]]) -> tuple[Array, Array]:
        """Run the encoder on right-padded ``prompts``; return its output and the source mask."""
        width = max(len(p) for p in prompts)
        ids = np.full((len(prompts), width), self.pad_id, dtype=np.int64)
        enc_mask = np.zeros((len(prompts), width), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = prompt
            enc_mask[row, : len(prompt)] = 1
        (hidden,) = self.encoder.run(None, {"input_ids": ids, "attention_mask": enc_mask})
        return hidden, enc_mask

    def encode(self, prompts: list[list[int]]) -> DecoderState:
        """Encode ``prompts`` into a state with the cross-attention keys and values and an empty self cache:
        its rows take their first step (with the start token) in whatever step runs next, alone or joined
        to a running batch. Needs the cross graph (see :attr:`joins_a_step`)."""
        assert self.cross is not None, "serving directories with Optimum's first-step graph use prefill()"
        hidden, enc_mask = self._encode_ids(prompts)
        cross_kv = self.cross.run(self._cross_out, {"encoder_hidden_states": hidden})
        empty = np.zeros((len(prompts), self._heads, 0, self._d_kv), dtype=np.float32)
        return DecoderState([empty] * len(self._self_out), cross_kv, np.zeros((len(prompts), 0), dtype=np.int64),
                            enc_mask)

    def prefill(self, prompts: list[list[int]]) -> tuple[Array, DecoderState]:
        """Encode ``prompts`` and run the first decoder step; return its logits and the state."""
        start = np.full((len(prompts), 1), self.start_id, dtype=np.int64)
        if self.cross is not None:  # cross keys and values once; then the step graph from an empty cache
            return self.step(self.encode(prompts), start)
        # Optimum's first-step graph computes both caches itself.
        assert self.decoder is not None
        hidden, enc_mask = self._encode_ids(prompts)
        self_mask = np.ones((len(prompts), 1), dtype=np.int64)
        logits, *presents = self.decoder.run(["logits", *self._self_out, *self._cross_out], {
            "input_ids": start, "attention_mask": self_mask, "encoder_attention_mask": enc_mask,
            "encoder_hidden_states": hidden})
        n = len(self._self_out)
        return logits[:, -1, :], DecoderState(presents[:n], presents[n:], self_mask, enc_mask)

    def step(self, state: DecoderState, tokens: Array) -> tuple[Array, DecoderState]:
        """Feed one token per row; return next-token logits and the grown state."""
        self_mask = np.concatenate([state.self_mask, np.ones((state.size, 1), dtype=np.int64)], axis=1)
        feed: dict[str, Array] = {
            "input_ids": tokens.reshape(-1, 1).astype(np.int64, copy=False),
            "attention_mask": self_mask,
            "encoder_attention_mask": state.enc_mask,
        }
        feed.update(zip(self._self_in, state.self_kv, strict=True))
        feed.update(zip(self._cross_in, state.cross_kv, strict=True))
        logits, *self_kv = self.decoder_past.run(["logits", *self._self_out], feed)
        return logits[:, -1, :], DecoderState(self_kv, state.cross_kv, self_mask, state.enc_mask)

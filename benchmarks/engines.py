"""The engines the decode suite races, each forced to greedy-decode exactly N new tokens, and the hardware floor.

Every runner has ``prepare(prompts)`` (outside the timed region: ids into the engine's own input type)
and ``run(prepared, n) -> Timing``. EOS is ignored everywhere so every engine does the same work.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import median

BANDWIDTH_MB = 256  # array copied to measure memory bandwidth: far larger than any cache
BANDWIDTH_REPEATS = 7


@dataclass(frozen=True)
class Timing:
    """One timed generation: the whole call, up to the first token, and the remaining decode steps."""

    total_s: float
    first_s: float
    decode_s: float  # n - 1 decoder steps after the first token


class OrtRunner:
    """Our Engine (ONNX Runtime), greedy argmax in a plain loop: what the batcher does minus scheduling."""

    def __init__(self, serving: Path, threads: int) -> None:
        from server.generation.engine import Engine
        from server.serving_dir import open_serving_dir

        self.engine = Engine(open_serving_dir(serving, verify=False), num_threads=threads)

    def prepare(self, prompts: list[list[int]]) -> Any:
        return prompts

    def run(self, prompts: Any, n: int) -> Timing:
        began = time.perf_counter()
        logits, state = self.engine.prefill(prompts)
        tokens = logits.argmax(-1)
        first = time.perf_counter()
        for _ in range(n - 1):
            logits, state = self.engine.step(state, tokens)
            tokens = logits.argmax(-1)
        end = time.perf_counter()
        return Timing(end - began, first - began, end - first)


class TorchRunner:
    """PyTorch fp32 ``generate``, as the old service ran it; a streamer timestamps each token."""

    def __init__(self, hf_dir: Path, threads: int) -> None:
        import torch
        from transformers import T5ForConditionalGeneration

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = T5ForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()

    def prepare(self, prompts: list[list[int]]) -> Any:
        width = max(len(p) for p in prompts)
        ids = self.torch.zeros((len(prompts), width), dtype=self.torch.long)
        mask = self.torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            ids[row, : len(p)] = self.torch.tensor(p)
            mask[row, : len(p)] = 1
        return ids, mask

    def run(self, prepared: Any, n: int) -> Timing:
        from transformers.generation.streamers import BaseStreamer

        stamps: list[float] = []

        class Stamp(BaseStreamer):  # put() gets the start token first, then each new token
            def put(self, value: Any) -> None:
                stamps.append(time.perf_counter())

            def end(self) -> None:
                pass

        ids, mask = prepared
        began = time.perf_counter()
        with self.torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, min_new_tokens=n, max_new_tokens=n,
                                      do_sample=False, num_beams=1, streamer=Stamp())
        end = time.perf_counter()
        assert out.shape[1] == n + 1, f"generate made {out.shape[1] - 1} tokens, not {n}"
        return Timing(end - began, stamps[1] - began, end - stamps[1])


class Ct2Runner:
    """CTranslate2 int8, the outside peer: greedy ``translate_batch`` with a fixed decoding length."""

    def __init__(self, ct2_dir: Path, threads: int) -> None:
        import json

        import ctranslate2

        # Its own vocabulary, id by id: the same ids the other engines get, whatever tokenizer made them.
        self.vocabulary = json.loads((ct2_dir / "shared_vocabulary.json").read_text())
        self.translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type="int8",
                                                 intra_threads=threads)

    def prepare(self, prompts: list[list[int]]) -> Any:
        return [[self.vocabulary[i] for i in p] for p in prompts]

    def run(self, prepared: Any, n: int) -> Timing:
        stamps: list[float] = []

        def stamp(_step: Any) -> bool:
            stamps.append(time.perf_counter())
            return False  # True would stop decoding this row

        began = time.perf_counter()
        # The callback fires per row per step (beam_size=1): its first call is the first token.
        result = self.translator.translate_batch(prepared, beam_size=1, min_decoding_length=n,
                                                 max_decoding_length=n, callback=stamp)
        end = time.perf_counter()
        assert len(result[0].hypotheses[0]) == n, f"ctranslate2 made {len(result[0].hypotheses[0])} tokens"
        return Timing(end - began, stamps[0] - began, end - stamps[0])


def ensure_ct2(hf_dir: Path, out: Path) -> Path:
    """Convert the transformers model to a CTranslate2 int8 directory once (reused when present)."""
    if (out / "model.bin").is_file():
        return out
    from ctranslate2.converters import TransformersConverter

    work = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        TransformersConverter(str(hf_dir)).convert(str(work), quantization="int8", force=True)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def copy_bandwidth() -> float:
    """Bytes/s moved by one numpy copy of a 256 MB array (read + write counted), median of a few."""
    src = np.ones(BANDWIDTH_MB * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch faults the pages in; not timed
    times = []
    for _ in range(BANDWIDTH_REPEATS):
        began = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - began)
    return 2 * src.nbytes / median(times)


def decoder_bytes_per_step(serving: Path) -> int:
    """Weight bytes one decoder step must read: every initializer of decoder_with_past, except that a
    Gather (the token embedding) reads one row, not its whole table. KV caches are ignored (tiny here)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(serving / "decoder_with_past_model.onnx")).graph
    sizes = {init.name: numpy_helper.to_array(init).nbytes for init in graph.initializer}
    gathered = {node.input[0] for node in graph.node if node.op_type == "Gather" and node.input[0] in sizes}
    return sum(size for name, size in sizes.items() if name not in gathered)

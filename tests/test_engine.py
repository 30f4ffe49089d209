"""The ONNX engine against PyTorch, and batched decoding against decoding alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.local_models import qa_pairs
from server.generation.engine import DecoderState, Engine
from server.generation.text import TextCodec
from server.prompt import DEFAULT_TEMPLATE, render
from tests.conftest import ROOT


def greedy_alone(engine: Engine, prompt: list[int], steps: int) -> list[int]:
    logits, state = engine.prefill([prompt])
    tokens = [int(logits[0].argmax())]
    for _ in range(steps - 1):
        logits, state = engine.step(state, np.array(tokens[-1:]))
        tokens.append(int(logits[0].argmax()))
    return tokens


@pytest.fixture(scope="session")
def prompts(codec: TextCodec) -> list[list[int]]:
    return [codec.encode(render(DEFAULT_TEMPLATE, q)) for q, _ in qa_pairs()]


def test_onnx_fp32_greedy_tokens_equal_pytorch_greedy_tokens(
        tiny_model: Path, fp32_engine: Engine, prompts: list[list[int]]) -> None:
    import torch
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(tiny_model).eval()
    for prompt in prompts:
        with torch.no_grad():
            reference = model.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False)[0, 1:].tolist()
        ours = greedy_alone(fp32_engine, prompt, 40)
        assert ours[: ours.index(1) + 1] == reference  # up to and with EOS, where PyTorch stops


def test_rows_joining_late_decode_exactly_as_alone(fp32_engine: Engine, prompts: list[list[int]]) -> None:
    alone = [greedy_alone(fp32_engine, p, 16) for p in prompts[:3]]
    # Row 0 runs 5 steps alone, then rows 1 and 2 (different prompt lengths) join.
    logits, state = fp32_engine.prefill([prompts[0]])
    tokens: list[list[int]] = [[int(logits[0].argmax())]]
    for _ in range(5):
        logits, state = fp32_engine.step(state, np.array([tokens[0][-1]]))
        tokens[0].append(int(logits[0].argmax()))
    logits, fresh = fp32_engine.prefill(prompts[1:3])
    tokens += [[int(row.argmax())] for row in logits]
    state = DecoderState.concat(state, fresh)
    while min(len(t) for t in tokens) < 16:
        logits, state = fp32_engine.step(state, np.array([t[-1] for t in tokens]))
        for row, t in zip(logits, tokens, strict=True):
            t.append(int(row.argmax()))
    assert [t[:16] for t in tokens] == alone


def test_rows_taking_their_first_step_inside_a_running_step_decode_as_alone(
        fp32_engine: Engine, prompts: list[list[int]]) -> None:
    alone = [greedy_alone(fp32_engine, p, 12) for p in prompts[:3]]
    logits, state = fp32_engine.prefill([prompts[0]])
    tokens: list[list[int]] = [[int(logits[0].argmax())]]
    for _ in range(4):
        logits, state = fp32_engine.step(state, np.array([tokens[0][-1]]))
        tokens[0].append(int(logits[0].argmax()))
    # Rows 1 and 2 are only encoded; their first step is row 0's next one.
    state = DecoderState.concat(state, fp32_engine.encode(prompts[1:3]))
    tokens += [[], []]
    while min(len(t) for t in tokens) < 12:
        last = [t[-1] if t else fp32_engine.start_id for t in tokens]
        logits, state = fp32_engine.step(state, np.array(last))
        for row, t in zip(logits, tokens, strict=True):
            t.append(int(row.argmax()))
    assert [t[:12] for t in tokens] == alone


def test_rows_leaving_keep_the_others_on_course(fp32_engine: Engine, prompts: list[list[int]]) -> None:
    alone = greedy_alone(fp32_engine, prompts[2], 12)
    logits, state = fp32_engine.prefill(prompts[:3])
    tokens = [int(logits[2].argmax())]
    last = logits.argmax(-1)
    for _ in range(3):
        logits, state = fp32_engine.step(state, last)
        last = logits.argmax(-1)
        tokens.append(int(last[2]))
    state = state.select([2])
    last = last[2:]
    while len(tokens) < 12:
        logits, state = fp32_engine.step(state, last)
        last = logits.argmax(-1)
        tokens.append(int(last[0]))
    assert tokens == alone


def test_select_drops_padding_no_row_uses(fp32_engine: Engine, prompts: list[list[int]]) -> None:
    _, old = fp32_engine.prefill([prompts[0]])
    _, state = fp32_engine.step(old, np.array([5]))
    _, fresh = fp32_engine.prefill([prompts[5]])
    joined = DecoderState.concat(state, fresh)
    kept = joined.select([1])
    assert joined.self_mask.tolist() == [[1, 1], [0, 1]]
    assert kept.self_mask.tolist() == [[1]]
    assert kept.enc_mask.shape == (1, len(prompts[5]))


def test_threads_follow_the_cpus_the_process_may_use() -> None:
    # Pinned to one CPU, as a 1-vCPU task: one thread, not one per core of the machine.
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c",
                           "from server.generation.engine import session_options; "
                           "print(session_options(0).intra_op_num_threads)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1")

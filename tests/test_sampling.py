"""Token choice and stopping, on hand-made logits."""

from __future__ import annotations

import numpy as np

from server.generation.sampling import SamplingParams, check_stop, choose_token, nucleus

PARAMS = SamplingParams(max_new_tokens=4, temperature=1.0, top_p=0.9)


def test_temperature_zero_is_greedy() -> None:
    logits = np.array([0.1, 3.0, 2.9], dtype=np.float32)
    assert choose_token(logits, SamplingParams(4, 0.0, 0.9), np.random.default_rng(0)) == 1


def test_top_p_never_samples_outside_the_nucleus() -> None:
    # Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 keeps the first two only.
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(0)
    drawn = {nucleus(logits, 1.0, 0.75, rng) for _ in range(300)}
    assert drawn == {0, 1}


def test_top_p_looks_past_the_candidate_shortlist_when_needed() -> None:
    logits = np.zeros(5000)  # flat: the 256 best hold 5% of the mass
    rng = np.random.default_rng(0)
    drawn = [nucleus(logits, 1.0, 0.99, rng) for _ in range(200)]
    assert max(drawn) > 256


def test_same_seed_same_tokens() -> None:
    logits = np.random.default_rng(1).normal(size=1000)
    first = [choose_token(logits, PARAMS, np.random.default_rng(42)) for _ in range(3)]
    again = [choose_token(logits, PARAMS, np.random.default_rng(42)) for _ in range(3)]
    assert first == again


def test_stop_on_eos_then_on_length() -> None:
    assert check_stop(1, 2, PARAMS, eos_id=1) == "eos"
    assert check_stop(7, 4, PARAMS, eos_id=1) == "length"
    assert check_stop(7, 3, PARAMS, eos_id=1) is None

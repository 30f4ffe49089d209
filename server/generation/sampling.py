"""Choosing the next token and deciding when to stop: the small steps of the decode loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

FinishReason = Literal["eos", "length"]

# Below this temperature sampling is argmax in all but name, and dividing by it overflows.
_GREEDY_BELOW = 1e-4

# Top-p first looks among this many best tokens; only when they hold less than
# `top_p` of the mass does it sort the whole vocabulary. Same result, ~100x less sorting.
_CANDIDATES = 256


@dataclass(frozen=True)
class SamplingParams:
    """How one request picks its tokens."""

    max_new_tokens: int
    temperature: float  # 0 means greedy
    top_p: float
    seed: int | None = None


def greedy(logits: np.ndarray) -> int:
    """The single most likely token."""
    return int(np.argmax(logits))


def nucleus(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Sample from the smallest set of tokens holding ``top_p`` of the tempered mass."""
    # Temperature scales the logits; subtracting the max keeps exp() finite.
    scaled = logits.astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    # Look at the best candidates first, and fall back to the whole vocabulary only if needed.
    k = min(_CANDIDATES, probs.size)
    top = np.argpartition(-probs, k - 1)[:k] if k < probs.size else np.arange(probs.size)
    if probs[top].sum() < top_p and k < probs.size:
        top = np.arange(probs.size)
    order = top[np.argsort(-probs[top], kind="stable")]
    # Keep tokens until their cumulative mass reaches top_p (the crossing token included).
    cumulative = np.cumsum(probs[order])
    keep = order[: min(int(np.searchsorted(cumulative, top_p)) + 1, order.size)]
    # Renormalise what is kept and draw one.
    kept = probs[keep] / probs[keep].sum()
    return int(keep[rng.choice(keep.size, p=kept)])


def choose_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """Greedy at temperature 0 (or near it), nucleus sampling otherwise."""
    if params.temperature < _GREEDY_BELOW:
        return greedy(logits)
    return nucleus(logits, params.temperature, params.top_p, rng)


def check_stop(token: int, generated: int, params: SamplingParams, eos_id: int) -> FinishReason | None:
    """Why the sequence ends after ``token``, or None while it goes on."""
    if token == eos_id:
        return "eos"
    if generated >= params.max_new_tokens:
        return "length"
    return None

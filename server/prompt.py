"""The one place where a question, its retrieved passages and earlier turns become the model's input.

Budget policy, within ``MAX_INPUT_TOKENS``: the question always goes in whole
(422 if it alone does not fit); then the most recent earlier turn, if it fits
whole (a follow-up means little without it); then passages in rank order, the
first that does not fit trimmed to what is left (if at least
:data:`MIN_TRIMMED` tokens are) and the rest dropped; then older turns, most
recent first, each whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# FLAN-T5 was instruction-tuned on prompts of this form; the tiny test model is
# trained on the very same template so that tests exercise the real path.
DEFAULT_TEMPLATE = "Answer this question about cloud computing: {question}"
# FLAN's reading-comprehension form (context, then question), as in its SQuAD templates.
DEFAULT_GROUNDED_TEMPLATE = "Read this and answer the question.\n\n{context}\n\n{question}"
MIN_TRIMMED = 24  # a passage cut shorter than this says too little to be worth its tokens
MAX_TURNS = 64  # earlier turns offered to the budget at most (each takes several tokens of 512)


def check_template(template: str) -> str:
    """Return the template if it has exactly one ``{question}`` placeholder."""
    return _check(template, "PROMPT_TEMPLATE", ("question",))


def check_grounded_template(template: str) -> str:
    """Return the template if it has exactly one ``{context}`` and one ``{question}``."""
    return _check(template, "GROUNDED_TEMPLATE", ("context", "question"))


def _check(template: str, name: str, fields: tuple[str, ...]) -> str:
    for field in fields:
        if template.count("{" + field + "}") != 1:
            raise ValueError(f"{name} must contain the placeholder {{{field}}} exactly once")
    try:
        template.format(**dict.fromkeys(fields, ""))
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"{name} is not a valid format string: {exc}") from exc
    return template


def render(template: str, question: str) -> str:
    """Put the user's question into the template."""
    return template.format(question=question.strip())


def passage_text(title: str, text: str) -> str:
    """How a passage reads in the prompt: its title, then its text."""
    return f"{title}: {text}"


def render_grounded(template: str, question: str, passages: Sequence[str]) -> str:
    """Passages (already as :func:`passage_text`) and the question in the grounded template."""
    return template.format(context="\n\n".join(passages), question=question.strip())


def with_history(turns: Sequence[str], prompt: str) -> str:
    """Earlier turns (oldest first) before the prompt."""
    return "Conversation so far:\n" + "\n".join(turns) + "\n\n" + prompt if turns else prompt


@dataclass(frozen=True)
class Composed:
    ids: list[int]
    passages: int  # how many of the offered passages are in, in rank order (the last maybe trimmed)
    turns: int  # how many of the offered turns are in (the most recent ones)


class PromptTooLong(ValueError):
    """The question alone does not fit; the message says by how much."""


def compose(encode: Callable[[str], list[int]], limit: int, question: str, *, template: str,
            grounded_template: str | None = None, passages: Sequence[str] = (),
            turns: Sequence[str] = ()) -> Composed:
    """Token ids of the fullest prompt that fits ``limit``, following the module's budget policy.

    ``grounded_template`` set means a grounded answer: the passages go into it (even none,
    so the model reads the same form whether or not retrieval found anything).
    """

    def build(kept: Sequence[str], history: Sequence[str]) -> list[int]:
        body = (render_grounded(grounded_template, question, kept) if grounded_template is not None
                else render(template, question))
        return encode(with_history(history, body))

    ids = build([], [])
    if len(ids) > limit:
        raise PromptTooLong(f"{len(ids)} tokens with the prompt, more than the limit of {limit}")
    history: list[str] = []
    if turns and len(trial := build([], turns[-1:])) <= limit:  # the turn a follow-up refers to
        history, ids = list(turns[-1:]), trial
    kept: list[str] = []
    for passage in passages if grounded_template is not None else ():
        trial = build([*kept, passage], history)
        if len(trial) <= limit:
            kept.append(passage)
            ids = trial
            continue
        trimmed = _trim(passage, lambda text: build([*kept, text], history), limit)
        if trimmed is not None:
            kept.append(trimmed)
            ids = build(kept, history)
        break
    for turn in reversed(turns[: len(turns) - len(history)]):  # older turns, the most recent first
        trial = build(kept, [turn, *history])
        if len(trial) > limit:
            break
        history.insert(0, turn)
        ids = trial
    return Composed(ids, len(kept), len(history))


def _trim(passage: str, build: Callable[[str], list[int]], limit: int) -> str | None:
    """The longest word-prefix of ``passage`` (ending in "...") whose prompt fits, or None if too short."""
    words = passage.split()
    low, high = 0, len(words)  # invariant: a prefix of `low` words fits
    while low < high:
        mid = (low + high + 1) // 2
        if len(build(" ".join(words[:mid]) + " ...")) <= limit:
            low = mid
        else:
            high = mid - 1
    if low == 0:
        return None
    text = " ".join(words[:low]) + " ..."
    base = len(build(""))
    return text if len(build(text)) - base >= MIN_TRIMMED else None

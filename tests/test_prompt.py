"""The prompt stage: templates, and the budget passages and earlier turns share with the question."""

from __future__ import annotations

import pytest

from server import prompt
from server.generation.text import TextCodec

Q = "What is Amazon S3?"
PASSAGES = ["S3: object storage for any amount of data.", "EC2: virtual servers in the cloud.",
            "ECR: a registry for container images and more words to make it long " * 3]


def compose(codec: TextCodec, limit: int, **kw: object) -> prompt.Composed:
    return prompt.compose(codec.encode, limit, Q, template=prompt.DEFAULT_TEMPLATE, **kw)  # type: ignore[arg-type]


def test_grounded_prompt_puts_passages_in_rank_order_before_the_question(codec: TextCodec) -> None:
    composed = compose(codec, 512, grounded_template=prompt.DEFAULT_GROUNDED_TEMPLATE, passages=PASSAGES[:2])
    assert composed.ids == codec.encode("Read this and answer the question.\n\n" + PASSAGES[0] + "\n\n"
                                        + PASSAGES[1] + "\n\n" + Q)
    assert composed.passages == 2


def test_passages_that_do_not_fit_are_trimmed_then_dropped(codec: TextCodec) -> None:
    whole = len(compose(codec, 512, grounded_template=prompt.DEFAULT_GROUNDED_TEMPLATE,
                        passages=PASSAGES[:2]).ids)
    composed = compose(codec, whole + 40, grounded_template=prompt.DEFAULT_GROUNDED_TEMPLATE,
                       passages=[PASSAGES[0], PASSAGES[1], PASSAGES[2], PASSAGES[0]])
    words = PASSAGES[2].split()
    trimmed = {tuple(codec.encode(prompt.render_grounded(prompt.DEFAULT_GROUNDED_TEMPLATE, Q, [
        PASSAGES[0], PASSAGES[1], " ".join(words[:n]) + " ..."]))) for n in range(1, len(words))}
    assert composed.passages == 3 and len(composed.ids) <= whole + 40
    assert tuple(composed.ids) in trimmed


def test_a_passage_cut_too_short_is_left_out(codec: TextCodec) -> None:
    whole = len(compose(codec, 512, grounded_template=prompt.DEFAULT_GROUNDED_TEMPLATE, passages=PASSAGES[:1]).ids)
    composed = compose(codec, whole + 5, grounded_template=prompt.DEFAULT_GROUNDED_TEMPLATE, passages=PASSAGES)
    assert composed.passages == 1


def test_most_recent_turns_are_kept_first(codec: TextCodec) -> None:
    alone = len(compose(codec, 512).ids)
    recent = len(codec.encode(prompt.with_history(["assistant: Yes"], prompt.render(prompt.DEFAULT_TEMPLATE, Q))))
    composed = compose(codec, recent, turns=["user: " + "cloud " * 40, "assistant: Yes"])
    assert composed.turns == 1 and alone < recent
    assert composed.ids == codec.encode("Conversation so far:\nassistant: Yes\n\n" + prompt.render(
        prompt.DEFAULT_TEMPLATE, Q))


def test_a_question_that_alone_is_too_long_is_refused(codec: TextCodec) -> None:
    with pytest.raises(prompt.PromptTooLong, match="more than the limit of 10"):
        compose(codec, 10)


@pytest.mark.parametrize("template", ["{question}", "{context} {context} {question}", "{context} {question} {x}"])
def test_grounded_template_needs_context_and_question_once(template: str) -> None:
    with pytest.raises(ValueError, match="GROUNDED_TEMPLATE"):
        prompt.check_grounded_template(template)

"""The one place where a cloud question becomes the model's input text."""

from __future__ import annotations

# FLAN-T5 was instruction-tuned on prompts of this form; the tiny test model is
# trained on the very same template so that tests exercise the real path.
DEFAULT_TEMPLATE = "Answer this question about cloud computing: {question}"


def check_template(template: str) -> str:
    """Return the template if it has exactly one ``{question}`` placeholder."""
    if template.count("{question}") != 1:
        raise ValueError("PROMPT_TEMPLATE must contain the placeholder {question} exactly once")
    try:
        template.format(question="")
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"PROMPT_TEMPLATE is not a valid format string: {exc}") from exc
    return template


def render(template: str, question: str) -> str:
    """Put the user's question into the template."""
    return template.format(question=question.strip())

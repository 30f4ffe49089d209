"""The prompts the speed suites time: a short question (~20 tokens) and a grounded one (~400 tokens).

Both go through the server's own templates. Grounded prompts are composed as the server composes them
(:func:`server.prompt.compose`): passages of AWS's own documentation from botocore, in rank order,
trimmed to fit. Token counts come from flan-t5-small's real tokenizer when one is at hand
(``--tokenizer``, or ``../shared/flan-t5-small/tokenizer.json`` beside the checkout); otherwise from the
served model's own tokenizer, whose ids then stand in for real ones (timing depends on the count only).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import ROOT
from server.generation.text import TextCodec
from server.prompt import DEFAULT_GROUNDED_TEMPLATE, DEFAULT_TEMPLATE, compose, passage_text, render

SHARED_TOKENIZER = ROOT.parent / "shared" / "flan-t5-small" / "tokenizer.json"
SHORT = (
    "What is the difference between IaaS, PaaS and SaaS?",
    "How does auto scaling work in a public cloud?",
    "What is an availability zone?",
    "Why would a team choose serverless functions over containers?",
)
# A question and the botocore documents retrieval would rank first for it (service/operation ids).
GROUNDED = (
    ("How do I send a message to an SQS queue?", ("sqs/SendMessage", "sqs/SendMessageBatch", "sqs")),
    ("How do I start a new EC2 instance?", ("ec2/RunInstances", "ec2/StartInstances", "ec2")),
    ("How do I upload a file to S3?", ("s3/PutObject", "s3/CreateMultipartUpload", "s3/UploadPart")),
    ("How can I run code without servers?", ("lambda", "lambda/Invoke", "lambda/CreateFunction")),
)
GROUNDED_TOKENS = 420  # the budget passages are composed into: prompts come out at ~400 tokens


def tokenizer_file(serving_int8: Path, wanted: str | None = None) -> tuple[Path, str]:
    """The tokenizer that counts prompt tokens, and how to name it in a report."""
    if wanted:
        return Path(wanted), f"{wanted}"
    if SHARED_TOKENIZER.is_file():
        return SHARED_TOKENIZER, "flan-t5-small's real tokenizer"
    return serving_int8 / "tokenizer.json", "the served model's own tokenizer"


def short_prompts(codec: TextCodec) -> list[list[int]]:
    return [codec.encode(render(DEFAULT_TEMPLATE, q)) for q in SHORT]


def grounded_prompts(codec: TextCodec, limit: int = GROUNDED_TOKENS) -> list[list[int]]:
    from export.knowledge.corpus import botocore_documents

    services = sorted({doc_id.split("/")[0] for _, ids in GROUNDED for doc_id in ids})
    docs = {d.id: d for d in botocore_documents(services)}
    prompts = []
    for question, ids in GROUNDED:
        passages = [passage_text(docs[i].title, docs[i].text) for i in ids]
        prompts.append(compose(codec.encode, limit, question, template=DEFAULT_TEMPLATE,
                               grounded_template=DEFAULT_GROUNDED_TEMPLATE, passages=passages).ids)
    return prompts


def prompt_sets(serving_int8: Path, tokenizer: str | None = None) -> tuple[dict[str, list[list[int]]], str]:
    """{"short": [...], "grounded": [...]} token ids, and which tokenizer counted them."""
    path, label = tokenizer_file(serving_int8, tokenizer)
    codec = TextCodec(path, clean_up=True)
    return {"short": short_prompts(codec), "grounded": grounded_prompts(codec)}, label

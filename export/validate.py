"""Check an exported serving directory against the PyTorch fp32 model it came from.

For each validation question PyTorch decodes greedily; the ONNX engine is then
teacher-forced along PyTorch's tokens, so every position compares the two
models on the same prefix. Reported: top-1 agreement over all positions and the
largest absolute logit difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.generation.engine import Engine
from server.generation.text import TextCodec
from server.prompt import DEFAULT_TEMPLATE, render
from server.serving_dir import ServingDir

VALIDATION_QUESTIONS = (
    "What is AWS EC2?",
    "What is Amazon S3?",
    "What is AWS Lambda?",
    "What is Amazon ECS?",
    "What is AWS Fargate?",
    "What is an Application Load Balancer?",
    "How does autoscaling work in the cloud?",
    "What is the difference between a container and a virtual machine?",
)


@dataclass(frozen=True)
class ValidationReport:
    questions: int
    positions: int
    top1_agreement: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float

    def as_manifest(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def validate(torch_model_dir: Path, serving: ServingDir, max_tokens: int = 32) -> ValidationReport:
    """Teacher-forced comparison of PyTorch fp32 and the exported ONNX model."""
    import torch
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(torch_model_dir, dtype=torch.float32).eval()
    codec = TextCodec(serving.file("tokenizer.json"), clean_up=False)
    engine = Engine(serving)
    agree, positions, diffs = 0, 0, []
    for question in VALIDATION_QUESTIONS:
        ids = codec.encode(render(DEFAULT_TEMPLATE, question))
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                 num_beams=1, output_scores=True, return_dict_in_generate=True,
                                 output_logits=True)
        ref_logits = torch.stack(out.logits, dim=1)[0].numpy()  # [steps, vocab]
        forced = out.sequences[0, 1:].tolist()  # tokens after the decoder start
        logits, state = engine.prefill([ids])
        got = [logits[0]]
        for token in forced[:-1]:
            logits, state = engine.step(state, np.array([token]))
            got.append(logits[0])
        ours = np.stack(got)
        agree += int((ours.argmax(-1) == ref_logits.argmax(-1)).sum())
        positions += len(forced)
        diffs.append(np.abs(ours - ref_logits))
    all_diffs = np.concatenate([d.ravel() for d in diffs])
    return ValidationReport(len(VALIDATION_QUESTIONS), positions, agree / positions,
                            float(all_diffs.max()), float(all_diffs.mean()))

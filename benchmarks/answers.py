"""Answer quality: what grounding and int8 each cost or gain, on cloud questions with reference answers.

Each question is answered four ways, greedy: the served int8 ONNX model (the server's own engine, batcher
and prompt composition, one request at a time) and the PyTorch fp32 model it was exported from
(``generate``, fed the very same prompt token ids), each grounded on the passages the serving directory's
knowledge base retrieves and ungrounded (the plain ``PROMPT_TEMPLATE``). Scores are SQuAD's exact match and
token F1 against the question's reference answers (the best of them counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import string
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import MODELS_DIR, fmt, log, md_table, run_meta, write_results
from export.source import ExportError, HubUnreachable, resolve
from server import prompt
from server import serving_dir as sd
from server.generation.text import TextCodec
from server.retrieval.knowledge import KnowledgeBase
from server.settings import Settings

QUESTIONS = Path(__file__).parent / "data" / "answer_questions.json"
PUNCTUATION = frozenset(string.punctuation)
CONFIGS = ("int8 grounded", "fp32 grounded", "int8 ungrounded", "fp32 ungrounded")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction: str, references: list[str]) -> float:
    return float(any(normalize(prediction) == normalize(r) for r in references))


def token_f1(prediction: str, references: list[str]) -> float:
    """SQuAD's token F1, the best over the references."""
    def f1(reference: str) -> float:
        pred, ref = normalize(prediction).split(), normalize(reference).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            return float(pred == ref)
        return 0.0 if common == 0 else 2 * common / (len(pred) + len(ref))
    return max(f1(r) for r in references)


def load_questions(path: Path) -> list[dict[str, Any]]:
    """``{"questions": [{"question": ..., "answers": [...]} or {..., "answer": "..."}, ...]}``."""
    items = json.loads(path.read_text())["questions"]
    for item in items:
        item["answers"] = item.get("answers") or [item["answer"]]
        if not isinstance(item["question"], str) or not all(isinstance(a, str) for a in item["answers"]):
            raise ValueError(f"{item!r}: question and answers must be strings")
    if not items:
        raise ValueError("no questions")
    return list(items)


def knowledge(root: Path) -> KnowledgeBase:
    """The knowledge base of a serving directory, or of the retrieval suite's build (``sections.json``)."""
    for name in (sd.MANIFEST, "sections.json"):
        if (root / name).is_file() and "embedder" in (described := json.loads((root / name).read_text())):
            return KnowledgeBase.load(root, described["embedder"], num_threads=1)
    raise ValueError(f"{root} has no knowledge base (export with --knowledge botocore, or pass --kb DIR)")


def served(serving: sd.ServingDir, prompts: list[list[int]], n: int, threads: int) -> list[list[int]]:
    """Greedy answers from the server's own engine and batcher, one request at a time (as a lone user sees)."""
    from server.generation.batcher import Batcher
    from server.generation.engine import Engine
    from server.generation.sampling import SamplingParams

    batcher = Batcher(Engine(serving, num_threads=threads), serving.generation.eos_token_id, 1, 0.0, len(prompts))
    batcher.start()

    async def ask_all() -> list[list[int]]:
        return [(await batcher.submit(p, SamplingParams(n, 0.0, 1.0), every_token=False).future).tokens
                for p in prompts]
    try:
        return asyncio.run(ask_all())
    finally:
        batcher.stop()


def pytorch(model_dir: Path, prompts: list[list[int]], n: int, threads: int, eos: int) -> list[list[int]]:
    """Greedy answers from PyTorch fp32 ``generate`` on the same token ids."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from server.generation.engine import usable_cpus

    torch.set_num_threads(threads or usable_cpus())
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    answers = []
    with torch.inference_mode():
        for ids in prompts:
            x = torch.tensor([ids])
            tokens = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, num_beams=1,
                                    max_new_tokens=n)[0, 1:].tolist()  # after the decoder start token
            answers.append(tokens[: tokens.index(eos)] if eos in tokens else tokens)
    return answers


def fail(message: str, code: int) -> int:
    print(f"benchmarks answers: {message}", file=sys.stderr, flush=True)
    return code


def main(args: argparse.Namespace) -> int:
    """Exit status: 0 (also when the hub is unreachable: one line says the run was skipped), 2 for bad arguments."""
    if not args.model:
        return fail("give --model DIR_OR_HUB_ID: the PyTorch model the --serving directory was exported from", 2)
    if any(value is not None and value < 1 for value in (args.k, args.max_new_tokens)):
        return fail("--k and --max-new-tokens must be at least 1", 2)
    try:
        items = load_questions(Path(args.questions) if args.questions else QUESTIONS)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return fail(f"cannot read the questions: {exc}", 2)
    try:
        source = resolve(args.model, None, os.environ.get("HF_TOKEN") or None)
    except HubUnreachable as exc:
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
        return fail(f"skipped: {exc}{offline}", 0)
    except ExportError as exc:
        return fail(str(exc), 2)
    serving_path = Path(args.serving) if args.serving else MODELS_DIR / f"{Path(args.model.rstrip('/')).name}-int8"
    try:
        serving = sd.open_serving_dir(serving_path)
        kb = knowledge(Path(args.kb) if args.kb else serving_path)
    except (sd.ServingDirError, ValueError, OSError) as exc:
        return fail(f"{exc}; or pass --serving DIR (scripts/serve.sh exports models/<name>-int8)", 2)
    if serving.source_model != source.model:
        log(f"warning: {serving_path} was exported from {serving.source_model}, not {source.model}")
    items = items[:5] if args.quick else items
    codec = TextCodec(serving.file(sd.TOKENIZER), serving.generation.clean_up_tokenization_spaces)
    defaults = Settings.model_construct()  # the server's defaults, not this shell's environment
    k, limit = args.k or defaults.retrieval_k, defaults.max_input_tokens
    prompts: dict[str, list[list[int]]] = {"grounded": [], "ungrounded": []}
    for item in items:
        hits = kb.search(item["question"], k)
        composed = prompt.compose(codec.encode, limit, item["question"], template=defaults.prompt_template,
                                  grounded_template=defaults.grounded_template,
                                  passages=[prompt.passage_text(h.passage.title, h.passage.text) for h in hits])
        item["sources"] = [h.passage.id for h in hits[: composed.passages]]
        prompts["grounded"].append(composed.ids)
        prompts["ungrounded"].append(prompt.compose(codec.encode, limit, item["question"],
                                                    template=defaults.prompt_template).ids)
    n, m, every = args.max_new_tokens or defaults.max_new_tokens, len(items), sum(prompts.values(), [])
    log(f"int8 ONNX from {serving_path}, then PyTorch fp32 from {source.path}: {m} questions, grounded and not")
    tokens = {"int8": served(serving, every, n, args.threads or 0),
              "fp32": pytorch(source.path, every, n, args.threads or 0, serving.generation.eos_token_id)}
    answers = {f"{precision} {mode}": [codec.decode(t) for t in tokens[precision][j * m:(j + 1) * m]]
               for precision in tokens for j, mode in enumerate(prompts)}
    for i, item in enumerate(items):
        item["predictions"] = {c: {"answer": (a := answers[c][i]), "exact_match": exact_match(a, item["answers"]),
                                   "f1": token_f1(a, item["answers"])} for c in CONFIGS}
    scores = {c: {m: sum(i["predictions"][c][m] for i in items) / len(items) for m in ("exact_match", "f1")}
              for c in CONFIGS}
    same = {mode: sum(a == b for a, b in zip(answers[f"int8 {mode}"], answers[f"fp32 {mode}"], strict=True))
            for mode in prompts}
    # By document: passage numbers depend on the tokenizer that cut the knowledge base.
    found = [i["passage"].split("#")[0] in {h.split("#")[0] for h in i["sources"]} for i in items if "passage" in i]
    label = (f"{'local dir ' if source.revision is None else 'hub '}{args.model} (PyTorch fp32) and its int8 ONNX "
             f"export {serving_path}")
    meta = run_meta(None, args.quick)
    meta["model"] = {"label": label, "pytorch": str(source.path), "serving": str(serving_path),
                     "serving_source": serving.source_model, "knowledge": str(args.kb or serving_path)}
    data = {"questions": len(items), "k": k, "max_new_tokens": n, "scores": scores, "int8_equals_fp32": same,
            "reference_document_in_prompt": sum(found) if found else None, "items": items}
    write_results("answers", meta, data, report(data, found), lambda fig: chart(fig, scores))
    return 0


def report(d: dict[str, Any], found: list[bool]) -> str:
    n, s = d["questions"], d["scores"]
    rows = [[c, fmt(s[c]["exact_match"], 3), fmt(s[c]["f1"], 3)] for c in CONFIGS]
    body = (f"{n} questions, greedy, at most {d['max_new_tokens']} new tokens; grounded on the top {d['k']} "
            f"passages. int8 answers equal fp32's for {d['int8_equals_fp32']['grounded']} of {n} grounded and "
            f"{d['int8_equals_fp32']['ungrounded']} of {n} ungrounded questions.")
    if found:
        body += f" A passage of the reference's document was in the grounded prompt for {sum(found)} of {len(found)}."
    body += "\n\n" + md_table(["configuration", "exact match", "token F1"], rows) + "\n\n"
    def cell(text: str) -> str:  # an answer may hold anything: keep it on its table row
        return " ".join(text.split()).replace("|", "\\|") or "(empty)"

    body += md_table(["question", "reference", *CONFIGS],
                     [[cell(i["question"]), cell(i["answers"][0]),
                       *(f"{cell(i['predictions'][c]['answer'])} ({i['predictions'][c]['f1']:.2f})" for c in CONFIGS)]
                      for i in d["items"]]) + "\n\nEach answer with its token F1 in brackets.\n"
    return body


def chart(fig: Any, scores: dict[str, dict[str, float]]) -> None:
    ax = fig.subplots()
    for offset, metric in ((-0.2, "exact_match"), (0.2, "f1")):
        ax.bar([i + offset for i in range(len(CONFIGS))], [scores[c][metric] for c in CONFIGS], width=0.4,
               label=metric.replace("_", " "))
    ax.set_xticks(range(len(CONFIGS)), CONFIGS)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Answer quality: grounded vs ungrounded, int8 ONNX vs PyTorch fp32")

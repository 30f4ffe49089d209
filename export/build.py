"""Build a serving directory: resolve the model, export, quantize, validate, write the manifest.

Everything is written into a temporary directory beside the target and renamed
into place at the very end, so a failed export never leaves a half-written
serving directory behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export.knowledge.build import KnowledgeOptions, build_knowledge
from export.onnx_export import export_onnx
from export.quantize import QuantConfig, quantize_file
from export.source import ExportError, Source, resolve
from export.validate import validate
from export.versions import installed_versions
from server import serving_dir as sd

LIBRARIES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "botocore")


@dataclass(frozen=True)
class ExportOptions:
    model: str
    out: Path
    fp32: bool = False
    revision: str | None = None
    token: str | None = None
    min_agreement: float = 0.9
    quant: QuantConfig = QuantConfig()
    decoder: str = "lean"  # graphs: "lean" (export/lean_encoder.py, lean_decoder.py) or Optimum's "optimum"
    knowledge: KnowledgeOptions = KnowledgeOptions()  # none unless botocore or --docs is asked for


def check_t5(source: Source) -> None:
    """Only T5-family seq2seq checkpoints fit the engine's graph layout."""
    try:
        config = json.loads((source.path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{source.model}: unreadable config.json: {exc}") from None
    kind = config.get("model_type")
    if kind != "t5":
        kind = kind or "model of unknown type"
        raise ExportError(f"{source.model} is a {kind}, not a T5: only T5 models are supported")
    if not (source.path / "tokenizer.json").is_file() and not (source.path / "spiece.model").is_file():
        raise ExportError(f"{source.model} has no tokenizer.json or spiece.model")


def prepare_target(out: Path) -> Path:
    """Make sure the output's parent is writable; return a fresh work directory beside it."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None


def write_tokenizer(source: Source, work: Path) -> bool:
    """tokenizer.json for the server (converted from SentencePiece if needed); returns clean-up flag."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.path, use_fast=True)
    tok.backend_tokenizer.save(str(work / sd.TOKENIZER))
    return bool(getattr(tok, "clean_up_tokenization_spaces", False))


def write_generation(source: Source, work: Path, clean_up: bool) -> None:
    config = json.loads((source.path / "config.json").read_text())
    generation = {
        "decoder_start_token_id": int(config.get("decoder_start_token_id", 0) or 0),
        "eos_token_id": int(config.get("eos_token_id", 1)),
        "pad_token_id": int(config.get("pad_token_id", 0)),
        "clean_up_tokenization_spaces": clean_up,
    }
    (work / sd.GENERATION).write_text(json.dumps(generation, indent=2) + "\n")


def build(opts: ExportOptions) -> dict[str, Any]:
    """Run the whole export; return the manifest written into ``opts.out``."""
    began = time.perf_counter()
    source = resolve(opts.model, opts.revision, opts.token)
    check_t5(source)
    work = prepare_target(opts.out)
    try:
        fp32_dir = work / "fp32"
        onnx_files = [p.name for p in export_onnx(source.path, fp32_dir, lean=opts.decoder == "lean")]
        fp32_bytes = {name: (fp32_dir / name).stat().st_size for name in onnx_files}
        for name in onnx_files:
            if opts.fp32:
                shutil.move(fp32_dir / name, work / name)
            else:
                quantize_file(fp32_dir / name, work / name, opts.quant)
        shutil.rmtree(fp32_dir)
        write_generation(source, work, write_tokenizer(source, work))
        # The knowledge base is sized in this model's tokens, so it is built with its tokenizer.
        sections = (build_knowledge(work, work / sd.TOKENIZER, opts.knowledge, opts.fp32, opts.token)
                    if opts.knowledge.wanted else {})
        manifest: dict[str, Any] = {
            "format": sd.FORMAT,
            "source": {"model": source.model, "revision": source.revision,
                       "path": str(source.path) if source.revision is None else None},
            "precision": "fp32" if opts.fp32 else "int8",
            "decoder_with_past": opts.decoder,
            "encoder": opts.decoder,  # the same choice: lean graphs throughout, or Optimum's traced ones
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": installed_versions(LIBRARIES),
            "quantization": None if opts.fp32 else opts.quant.as_manifest(),
            "fp32_bytes": fp32_bytes,
            **sections,
            "files": sd.describe_files(work),
        }
        (work / sd.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        report = validate(source.path, sd.open_serving_dir(work, verify=False))
        if report.top1_agreement < opts.min_agreement:
            raise ExportError(f"validation failed: top-1 agreement {report.top1_agreement:.3f} "
                              f"< {opts.min_agreement} (max |dlogit| {report.max_abs_logit_diff:.3f})")
        manifest["validation"] = report.as_manifest()
        manifest["export_seconds"] = round(time.perf_counter() - began, 1)
        (work / sd.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_into_place(work, opts.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _swap_into_place(work: Path, out: Path) -> None:
    """Replace ``out`` with ``work`` so readers see the old or the new directory, never a mix."""
    os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the model from a non-root server
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

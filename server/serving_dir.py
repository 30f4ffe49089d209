"""The serving directory: what `python -m export` writes and the server reads.

Layout::

    manifest.json              source, files with sha256 and size, versions, quantization, validation
    generation.json            token ids and text settings the decode loop needs
    tokenizer.json             read by the `tokenizers` library
    encoder_model.onnx         input_ids, attention_mask -> last_hidden_state
    decoder_cross_model.onnx   encoder output -> every layer's cross-attention keys and values, once
    decoder_with_past_model.onnx  every decoder step, one token at a time (the first with an empty past)
    decoder_model.onnx         instead of the cross graph, with --decoder optimum: Optimum's first step
    embedder/, knowledge/      optional: the knowledge base and its embedding model
                               (see server/retrieval/knowledge.py)

The format lives here, on the serving side, so the exporter and the server
cannot disagree about it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
GENERATION = "generation.json"
TOKENIZER = "tokenizer.json"
ENCODER = "encoder_model.onnx"
DECODER = "decoder_model.onnx"
CROSS = "decoder_cross_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
FORMAT = "iscoolgpt-serving/1"
REQUIRED = (GENERATION, TOKENIZER, ENCODER, DECODER_WITH_PAST)
FIRST_STEP = (CROSS, DECODER)  # one of them: the cross graph (lean export) or Optimum's first step


class ServingDirError(Exception):
    """The serving directory is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class GenerationDefaults:
    """Token ids and text handling the decode loop needs."""

    decoder_start_token_id: int
    eos_token_id: int
    pad_token_id: int
    clean_up_tokenization_spaces: bool


@dataclass(frozen=True)
class ServingDir:
    """A checked serving directory."""

    path: Path
    manifest: dict[str, Any]
    generation: GenerationDefaults

    @property
    def source_model(self) -> str:
        return str(self.manifest["source"]["model"])

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def has_knowledge(self) -> bool:
        """Whether the export built a knowledge base (and its embedder) into this directory."""
        return "knowledge" in self.manifest and "embedder" in self.manifest


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``directory`` (by relative path) except the manifest."""
    return {
        p.relative_to(directory).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST
    }


def open_serving_dir(path: Path, verify: bool = True) -> ServingDir:
    """Read and check a serving directory; raise :class:`ServingDirError` with one clear line."""
    if not path.is_dir():
        raise ServingDirError(f"serving directory {path} does not exist (run `python -m export` first)")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ServingDirError(f"{path} has no {MANIFEST}: not a serving directory") from None
    except (OSError, ValueError) as exc:
        raise ServingDirError(f"{path / MANIFEST} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ServingDirError(f"{path / MANIFEST} is not of format {FORMAT}")
    files = manifest.get("files", {})
    for name in REQUIRED:
        if name not in files:
            raise ServingDirError(f"{path / MANIFEST} does not list {name}")
    if not any(name in files for name in FIRST_STEP):
        raise ServingDirError(f"{path / MANIFEST} lists neither {CROSS} nor {DECODER}")
    for name, meta in files.items():
        if name.startswith("/") or ".." in Path(name).parts:  # the manifest names files inside, nowhere else
            raise ServingDirError(f"{path / MANIFEST} lists {name!r}, outside the directory")
        target = path / name
        if not target.is_file():
            raise ServingDirError(f"{target} is missing")
        if target.stat().st_size != meta["bytes"]:
            raise ServingDirError(f"{target} has {target.stat().st_size} bytes, manifest says {meta['bytes']}")
        if verify and sha256_file(target) != meta["sha256"]:
            raise ServingDirError(f"{target} does not match its sha256 in the manifest: corrupt")
    try:
        generation = GenerationDefaults(**json.loads((path / GENERATION).read_text()))
    except (TypeError, ValueError) as exc:
        raise ServingDirError(f"{path / GENERATION} is invalid: {exc}") from None
    return ServingDir(path=path, manifest=manifest, generation=generation)

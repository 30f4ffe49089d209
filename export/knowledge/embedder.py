"""The embedding model, exported like the generator: Optimum to ONNX, int8, validated against PyTorch.

Pooling and normalisation stay out of the graph: :class:`server.retrieval.embedder.Embedder`
does them in NumPy, so the graph is Optimum's stock ``feature-extraction`` export and
any BERT-like sentence-transformers model works (mean pooling for all-MiniLM-L6-v2,
CLS for the BGE family, as each model's ``1_Pooling/config.json`` says).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.quantize import QuantConfig, quantize_file
from server.retrieval.embedder import MODEL, TOKENIZER, Embedder, EmbedderConfig

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"

# Fixed validation set: cloud questions and documentation-like sentences of several lengths.
SENTENCES = (
    "What is AWS EC2?",
    "How do I send a message to a queue?",
    "Where can I store container images for my tasks?",
    "How much does object storage cost per gigabyte?",
    "Rotate the encryption key of my database every year",
    "Amazon Simple Queue Service: SendMessage. Delivers a message to the specified queue.",
    "Creates a new DB instance. The new instance is created in the default VPC unless you choose subnets.",
    "Amazon S3 is an object storage service that offers industry-leading scalability, data availability, "
    "security, and performance. Customers of all sizes and industries can store and protect any amount of data.",
    "AWS Lambda runs your code on a high-availability compute infrastructure and performs all of the "
    "administration of the compute resources, including server and operating system maintenance, capacity "
    "provisioning and automatic scaling, and logging.",
    "Returns a list of tags for the specified resource. Each tag consists of a key and an optional value.",
    "CloudWatch Logs enables you to centralize the logs from all of your systems, applications, and AWS services.",
    "A load balancer distributes incoming application traffic across multiple targets, such as EC2 instances.",
)


class EmbedderExportError(Exception):
    """The embedding model cannot be exported or fails validation."""


@dataclass(frozen=True)
class EmbedderReport:
    mean_cosine: float
    min_cosine: float
    sentences: int

    def as_manifest(self) -> dict[str, Any]:
        return {"reference": "PyTorch fp32", "sentences": self.sentences,
                "mean_cosine": round(self.mean_cosine, 6), "min_cosine": round(self.min_cosine, 6)}


def _pooling(model_dir: Path) -> str:
    config = model_dir / "1_Pooling" / "config.json"
    if config.is_file():
        pooling = json.loads(config.read_text())
        if pooling.get("pooling_mode_cls_token"):
            return "cls"
    return "mean"


def _max_length(model_dir: Path) -> int:
    """sentence-transformers' own limit if it has one, else the model's positions (at most 512)."""
    st = model_dir / "sentence_bert_config.json"
    if st.is_file():
        return int(json.loads(st.read_text()).get("max_seq_length", 512))
    config = json.loads((model_dir / "config.json").read_text())
    return min(int(config.get("max_position_embeddings", 512)), 512)


def reference_embeddings(model_dir: Path, pooling: str, max_length: int, texts: list[str]) -> np.ndarray:
    """The PyTorch fp32 embeddings (transformers + the same pooling), for validation and benchmarks."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def export_embedder(model_dir: Path, source: str, out: Path, fp32: bool, min_cosine: float) -> dict[str, Any]:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``out``; return the manifest's ``embedder`` section."""
    from optimum.exporters.onnx import main_export
    from transformers import AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text())
    if "hidden_size" not in config:
        raise EmbedderExportError(f"{source}: config.json has no hidden_size; not an encoder model")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        try:
            main_export(str(model_dir), tmp, task="feature-extraction", library_name="transformers",
                        do_validation=False)
        except (ValueError, KeyError, OSError) as exc:
            raise EmbedderExportError(f"{source}: ONNX export failed: {exc}") from None
        if fp32:
            shutil.move(Path(tmp) / MODEL, out / MODEL)
        else:
            quantize_file(Path(tmp) / MODEL, out / MODEL, QuantConfig())
    AutoTokenizer.from_pretrained(model_dir, use_fast=True).backend_tokenizer.save(str(out / TOKENIZER))
    cfg = EmbedderConfig(source, _pooling(model_dir), _max_length(model_dir), int(config["hidden_size"]))
    report = validate_embedder(model_dir, out, cfg)
    if report.min_cosine < min_cosine:
        raise EmbedderExportError(f"embedder validation failed: min cosine {report.min_cosine:.4f} "
                                  f"< {min_cosine} against PyTorch fp32 (mean {report.mean_cosine:.4f})")
    return {"source": cfg.source, "pooling": cfg.pooling, "max_length": cfg.max_length, "dim": cfg.dim,
            "precision": "fp32" if fp32 else "int8", "normalized": True, "validation": report.as_manifest()}


def validate_embedder(model_dir: Path, out: Path, cfg: EmbedderConfig) -> EmbedderReport:
    """Cosine between the exported model's and PyTorch fp32's embeddings of :data:`SENTENCES`."""
    ours = Embedder(out, cfg).embed(list(SENTENCES))
    theirs = reference_embeddings(model_dir, cfg.pooling, cfg.max_length, list(SENTENCES))
    cosines = (ours * theirs).sum(axis=1)
    return EmbedderReport(float(cosines.mean()), float(cosines.min()), len(SENTENCES))

"""Build the knowledge base into a serving directory: documents -> passages -> vectors + BM25.

The passages are embedded with the int8 ONNX embedder this same build has just
exported and validated, through the server's own :class:`Embedder`, so the
vectors on disk come from exactly the model that embeds queries at run time.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.knowledge import awscli
from export.knowledge.docs import read_docs
from export.knowledge.embedder import DEFAULT_EMBEDDER, EmbedderExportError, export_embedder
from export.knowledge.passages import Splitter, split_all
from export.knowledge.sources import collect
from export.knowledge.wheels import default_dir
from export.source import ExportError, resolve
from server.retrieval import knowledge as kb
from server.retrieval import lexical
from server.retrieval.embedder import Embedder, EmbedderConfig
from server.retrieval.lexical import BM25

log = logging.getLogger("iscoolgpt.export")


@dataclass(frozen=True)
class KnowledgeOptions:
    """What goes into the knowledge base and how it is cut and stored."""

    sources: tuple[str, ...] = ()  # names from export.knowledge.sources.SOURCES, e.g. sources.DEFAULT
    services: tuple[str, ...] | None = None  # only these botocore service ids, in every AWS source (default: all)
    docs: tuple[Path, ...] = field(default_factory=tuple)  # your own Markdown / HTML / text trees
    wheels: Path = field(default_factory=default_dir)  # where the sources' wheels are found or fetched to
    attach_examples: bool = False  # an awscli example joins its botocore operation's document, not its own
    embedder: str = DEFAULT_EMBEDDER
    embedder_name: str | None = None  # what /v1/embeddings reports (default: --embedder as given)
    min_cosine: float = 0.99  # fail the export below this cosine with PyTorch fp32
    passage_tokens: int = 128  # so three passages and a question fit FLAN-T5's 512 tokens
    overlap_tokens: int = 24
    dense_dtype: str = "float16"
    embed_threads: int = 0  # 0: one per core (build time has the machine to itself)

    @property
    def wanted(self) -> bool:
        return bool(self.sources or self.docs)


def build_knowledge(work: Path, tokenizer_file: Path, opts: KnowledgeOptions, fp32: bool,
                    token: str | None) -> dict[str, Any]:
    """Write ``embedder/`` and ``knowledge/`` into ``work``; return the manifest's two sections."""
    began = time.perf_counter()
    docs, sources = collect(opts.sources, opts.services, opts.wheels)
    if opts.attach_examples:
        docs = awscli.attach(docs)
    try:
        for root in opts.docs:
            docs += read_docs(root)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if not docs:
        raise ExportError("the knowledge base would be empty: no documents found")
    splitter = Splitter(tokenizer_file, opts.passage_tokens, opts.overlap_tokens)
    passages, dropped = split_all(docs, splitter)
    log.info("knowledge: %d documents -> %d passages (%d duplicates dropped)", len(docs), len(passages), dropped)

    # The embedder: exported, quantized and validated like the generator.
    source = resolve(opts.embedder, None, token)
    try:
        embedder_section = export_embedder(source.path, opts.embedder, work / kb.EMBEDDER, fp32, opts.min_cosine)
        embedder_section["name"] = opts.embedder_name or opts.embedder
    except EmbedderExportError as exc:
        raise ExportError(str(exc)) from None

    # Vectors: title and text together, as the passage is shown to the reader.
    embedder = Embedder(work / kb.EMBEDDER, EmbedderConfig.from_manifest(embedder_section), opts.embed_threads)
    texts = [f"{p.title}: {p.text}" for p in passages]
    embed_began = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_seconds = time.perf_counter() - embed_began
    log.info("knowledge: embedded %d passages in %.1fs", len(passages), embed_seconds)

    directory = work / kb.KNOWLEDGE
    directory.mkdir()
    kb.save_dense(directory, vectors, opts.dense_dtype)
    BM25.build(texts).save(directory)
    with (directory / kb.PASSAGES).open("w", encoding="utf-8") as fh:
        for passage in passages:
            fh.write(json.dumps(passage.as_record(), ensure_ascii=False) + "\n")
    sources["docs"] = [str(d) for d in opts.docs]
    knowledge = {
        "sources": sources,
        "documents": len(docs),
        "attach_examples": opts.attach_examples,
        "passages": len(passages),
        "duplicates_dropped": dropped,
        "passage_tokens": opts.passage_tokens,
        "overlap_tokens": opts.overlap_tokens,
        "tokens": sum(p.tokens for p in passages),
        "embedder_tokens": sum(embedder.count_tokens(texts)),
        "dense_dtype": opts.dense_dtype,
        "bm25": {"k1": lexical.K1, "b": lexical.B},
        "embed_seconds": round(embed_seconds, 1),
        "build_seconds": round(time.perf_counter() - began, 1),
    }
    return {"embedder": embedder_section, "knowledge": knowledge}

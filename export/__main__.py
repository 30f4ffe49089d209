"""``python -m export``: FLAN-T5 (hub id or local directory) -> quantized ONNX serving directory."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from export.build import ExportOptions, build
from export.knowledge.build import KnowledgeOptions
from export.knowledge.embedder import DEFAULT_EMBEDDER
from export.knowledge.sources import AWS, DEFAULT, SOURCES
from export.knowledge.sources import parse as parse_sources
from export.knowledge.wheels import default_dir
from export.quantize import QuantConfig, QuantizationError
from export.source import ExportError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("--model", default="google/flan-t5-small",
                        help="hub model id or local model directory (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="serving directory to write (default: models/<name>-int8 or -fp32)")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    parser.add_argument("--fp32", action="store_true", help="write an unquantized serving directory")
    parser.add_argument("--min-agreement", type=float, default=0.9,
                        help="fail below this teacher-forced top-1 agreement with PyTorch (default: %(default)s)")
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    parser.add_argument("--keep-fp32", action="append", default=[], metavar="REGEX",
                        help="leave MatMul nodes whose name matches in fp32 (repeatable)")
    parser.add_argument("--decoder", choices=("lean", "optimum"), default="lean",
                        help="encoder and decoder graphs: our lean ones (fused attention, one copy of the decoder's "
                             "weights) or Optimum's traced ones (default: %(default)s)")
    parser.add_argument("--local-model", choices=("tiny", "tiny-reader", "tiny-talker", "random-flan-t5-small"),
                        default=None,
                        help="build a local model instead of reading --model (no hub needed)")
    kb = parser.add_argument_group("knowledge base (grounded answers)")
    kb.add_argument("--knowledge", default="none", metavar="SOURCES",
                    help="comma list of " + ", ".join(SOURCES) + "; 'default' is the AWS set ("
                         + ", ".join(DEFAULT) + "); 'none' (default: %(default)s)")
    kb.add_argument("--services", default=None, metavar="ID,ID",
                    help="only these botocore service ids, in every AWS source (default: every service)")
    kb.add_argument("--wheels", type=Path, default=None, metavar="DIR",
                    help="where the sources' wheels are read from, and downloaded to when missing "
                         "(default: $ISCOOLGPT_WHEELS or ~/.cache/iscoolgpt/wheels)")
    kb.add_argument("--attach-examples", action="store_true",
                    help="join each awscli example to its botocore operation's document instead of its own")
    kb.add_argument("--docs", type=Path, action="append", default=[], metavar="DIR",
                    help="also ingest Markdown, HTML and text files under DIR (repeatable)")
    kb.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                    help="embedding model, hub id or local directory (default: %(default)s)")
    kb.add_argument("--embedder-name", default=None,
                    help="name /v1/embeddings reports (default: --embedder as given)")
    kb.add_argument("--min-cosine", type=float, default=0.99,
                    help="fail below this cosine between the int8 and PyTorch embeddings (default: %(default)s)")
    kb.add_argument("--passage-tokens", type=int, default=128,
                    help="passage size in the generator's tokens (default: %(default)s)")
    kb.add_argument("--overlap-tokens", type=int, default=24, help="tokens repeated between passages")
    kb.add_argument("--dense-dtype", choices=("float16", "int8"), default="float16",
                    help="how passage vectors are stored (default: %(default)s)")
    return parser


class UsageError(ValueError):
    """Options that cannot go together or name nothing: exit 2, as for argparse's own errors."""


def knowledge_options(args: argparse.Namespace) -> KnowledgeOptions:
    """The knowledge base asked for; an unknown source name is a :class:`UsageError` naming the valid ones."""
    try:
        sources = parse_sources(args.knowledge)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    services = tuple(s.strip() for s in args.services.split(",") if s.strip()) if args.services else None
    if services and not AWS & set(sources):
        raise UsageError("--services needs an AWS source in --knowledge (" + ", ".join(DEFAULT) + ")")
    return KnowledgeOptions(sources=sources, services=services, docs=tuple(args.docs),
                            wheels=args.wheels or default_dir(), attach_examples=args.attach_examples,
                            embedder=args.embedder, embedder_name=args.embedder_name, min_cosine=args.min_cosine,
                            passage_tokens=args.passage_tokens, overlap_tokens=args.overlap_tokens,
                            dense_dtype=args.dense_dtype)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        knowledge = knowledge_options(args)
    except UsageError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR, format="export: %(message)s")
    logging.getLogger("iscoolgpt.export").setLevel(logging.INFO)  # progress, and files --docs skips
    warnings.filterwarnings("ignore")
    try:
        model = args.model
        if args.local_model:
            from export.local_models import build as build_local

            model = str(build_local(args.local_model))
        name = Path(model.rstrip("/")).name
        out = args.out or Path("models") / f"{name}-{'fp32' if args.fp32 else 'int8'}"
        quant = QuantConfig(per_channel=not args.per_tensor, keep_fp32=tuple(args.keep_fp32))
        manifest = build(ExportOptions(model=model, out=out, fp32=args.fp32, revision=args.revision,
                                       token=os.environ.get("HF_TOKEN") or None,
                                       min_agreement=args.min_agreement, quant=quant, decoder=args.decoder,
                                       knowledge=knowledge))
    except (ExportError, QuantizationError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("export: interrupted; nothing was written", file=sys.stderr)
        return 130
    v = manifest["validation"]
    total = sum(f["bytes"] for n, f in manifest["files"].items() if n.endswith(".onnx"))
    print(f"wrote {out} ({manifest['precision']}, {total / 1e6:.1f} MB of ONNX) in {manifest['export_seconds']}s; "
          f"top-1 agreement {v['top1_agreement']:.4f}, max |dlogit| {v['max_abs_logit_diff']:.4f}")
    if "knowledge" in manifest:
        k, e = manifest["knowledge"], manifest["embedder"]["validation"]
        size = sum(f["bytes"] for n, f in manifest["files"].items() if n.startswith(("knowledge/", "embedder/")))
        print(f"knowledge base: {k['documents']} documents, {k['passages']} passages, {k['tokens']} tokens, "
              f"{size / 1e6:.1f} MB with the embedder, built in {k['build_seconds']}s "
              f"(embedding {k['embed_seconds']}s); embedder min cosine {e['min_cosine']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

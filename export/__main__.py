"""``python -m export``: FLAN-T5 (hub id or local directory) -> quantized ONNX serving directory."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from export.build import ExportError, ExportOptions, build
from export.quantize import QuantConfig, QuantizationError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
                        help="decoder-with-past graph: our lean one or Optimum's traced one (default: %(default)s)")
    parser.add_argument("--local-model", choices=("tiny", "tiny-talker", "random-flan-t5-small"), default=None,
                        help="build a local model instead of reading --model (no hub needed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
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
                                       min_agreement=args.min_agreement, quant=quant, decoder=args.decoder))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

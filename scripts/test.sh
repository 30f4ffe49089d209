#!/usr/bin/env bash
# The test command: set up, lint, type-check, run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check server export tests benchmarks
mypy
python -m pytest "$@"

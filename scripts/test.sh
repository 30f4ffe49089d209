#!/usr/bin/env bash
# The test command: set up, lint, type-check, run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check server export tests benchmarks deploy
mypy
mypy --strict deploy/render_task.py
# Shipping files, checked offline: no Docker engine or AWS account is needed.
hadolint Dockerfile
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
cfn-lint deploy/ecs-service.yaml
check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
python -m pytest "$@"

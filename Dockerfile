# syntax=docker/dockerfile:1.7
# IsCoolGPT: export FLAN-T5 to int8 ONNX at build time, serve it without PyTorch at run time.
#   docker build --build-arg MODEL_NAME=google/flan-t5-small --secret id=hf_token,env=HF_TOKEN -t iscoolgpt .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- export stage: CPU-only torch + Optimum turn the model into a serving directory ---------------
FROM ${PYTHON_IMAGE} AS export
ARG MODEL_NAME=google/flan-t5-small
ARG EMBEDDER=sentence-transformers/all-MiniLM-L6-v2
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements/ requirements/
# CPU torch first, from PyTorch's CPU index: PyPI's default build is CUDA and several GB.
RUN pip install --no-deps torch==2.13.0 --index-url "${TORCH_INDEX_URL}" \
 && pip install -r requirements/export.txt
COPY export/ export/
COPY server/ server/
# HF_TOKEN arrives as a BuildKit secret: it is read for this one command and is in no layer.
# The knowledge base goes in with the model: the default AWS set (botocore's API reference, awscli's examples,
# the CDK's guides, CloudFormation's schemas; the export downloads the pinned wheels), int8 all-MiniLM-L6-v2.
RUN --mount=type=secret,id=hf_token \
    HF_TOKEN="$(cat /run/secrets/hf_token 2>/dev/null || true)" \
    python -m export --model "${MODEL_NAME}" --out /build/models/serving \
      --knowledge default --embedder "${EMBEDDER}" --wheels /build/wheels

# --- runtime stage: ONNX Runtime, tokenizers, Starlette; no torch, transformers or optimum ---------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
COPY requirements/ /tmp/requirements/
COPY scripts/prune_runtime.sh /tmp/prune_runtime.sh
# The same pins the tests run with (requirements/image.txt), then what the server never loads goes.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-deps -r /tmp/requirements/image.txt \
 && bash /tmp/prune_runtime.sh /opt/venv/lib/python3.11/site-packages \
 && rm -rf /tmp/requirements /tmp/prune_runtime.sh
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /app/data && chown 10001:10001 /app/data
WORKDIR /app
COPY --chown=root:root server/ server/
COPY --from=export --chown=root:root /build/models/serving /models/serving
# Conversations: SQLite in /app/data (mount a volume to keep them) unless DATABASE_URL names PostgreSQL.
ENV MODEL_DIR=/models/serving HOST=0.0.0.0 PORT=8080 DRAIN_SECONDS=30 DATABASE_URL=sqlite:////app/data/iscoolgpt.db
VOLUME ["/app/data"]
USER 10001:10001
EXPOSE 8080
# The image has no curl: Python itself asks /health.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "server"]

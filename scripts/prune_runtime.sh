#!/usr/bin/env bash
# Remove from a runtime site-packages what the server never loads (used by the Dockerfile and its test).
#   onnxruntime's pybind module links ONNX Runtime statically: libonnxruntime.so is for C API users.
#   onnxruntime's transformers/quantization/tools are build-time tools; test suites are not served.
set -euo pipefail
site=${1:?usage: prune_runtime.sh SITE_PACKAGES}
rm -f  "$site"/onnxruntime/capi/libonnxruntime.so*
rm -rf "$site"/onnxruntime/{transformers,quantization,tools,datasets,backend}
find "$site" -depth -type d \( -name tests \) -path "*numpy*" -exec rm -rf {} +
find "$site" -depth -type d -name __pycache__ -exec rm -rf {} +
rm -rf "$site"/pip "$site"/pip-* "$site"/setuptools "$site"/setuptools-* "$site"/pkg_resources "$site"/_distutils_hack

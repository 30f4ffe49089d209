"""Build-time export of FLAN-T5 to quantized ONNX serving directories (needs torch)."""

"""IsCoolGPT serving process: FLAN-T5 on ONNX Runtime, without PyTorch."""

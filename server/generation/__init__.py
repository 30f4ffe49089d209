"""Generation: the continuous batcher, the ONNX Runtime engine under it, sampling, and text in and out."""

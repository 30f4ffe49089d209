"""Benchmarks for IsCoolGPT: ``python -m benchmarks <suite>`` (see benchmarks/README.md).

Nothing here is imported by the server; heavy libraries (torch, transformers,
ctranslate2, matplotlib) are imported inside the functions that need them.
"""

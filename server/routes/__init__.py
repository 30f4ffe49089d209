"""The HTTP routes: each reads its wire format, runs the pipeline, and writes its response."""

"""Retrieval: the knowledge base, its embedder and BM25, and hybrid search over them."""

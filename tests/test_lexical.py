"""BM25 as built into arrays and queried with NumPy: terms, weights, and the files it is stored in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from server.retrieval.lexical import BM25, terms

CORPUS = ["Send a message to the queue", "Delete the queue", "Create a bucket for objects"]


def test_terms_split_camel_case_and_keep_the_api_name() -> None:
    assert terms("SendMessage to queues") == ["send", "message", "sendmessage", "queue"]


def test_terms_drop_stop_words_and_fold_plurals() -> None:
    assert terms("What are the policies of the buckets?") == ["policy", "bucket"]


def test_scores_follow_lucene_bm25() -> None:
    index = BM25.build(CORPUS)
    lengths = [len(terms(t)) for t in CORPUS]
    avgdl = sum(lengths) / 3
    idf = math.log1p((3 - 2 + 0.5) / (2 + 0.5))  # "queue" is in two of three passages
    expected = [idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * n / avgdl)) for n in lengths[:2]]
    assert index.scores("queue") == pytest.approx(np.array([*expected, 0.0], dtype=np.float32), rel=1e-6)


def test_a_query_term_counts_once_however_often_it_is_asked() -> None:
    index = BM25.build(CORPUS)
    assert np.array_equal(index.scores("queue queue queue"), index.scores("queue"))


def test_unknown_words_score_nothing() -> None:
    assert not BM25.build(CORPUS).scores("kubernetes zebra").any()


def test_saved_index_scores_the_same(tmp_path: Path) -> None:
    BM25.build(CORPUS).save(tmp_path)
    assert np.array_equal(BM25.load(tmp_path).scores("create bucket"), BM25.build(CORPUS).scores("create bucket"))

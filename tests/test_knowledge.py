"""Hybrid search over a real knowledge base (botocore slice + the handbook) with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.local_models import reader_docs
from server.retrieval.knowledge import METHODS, KnowledgeBase, load_dense, save_dense
from server.serving_dir import open_serving_dir


@pytest.fixture(scope="module")
def kb(grounded_dir: Path) -> KnowledgeBase:
    serving = open_serving_dir(grounded_dir)
    return KnowledgeBase.load(serving.path, serving.manifest["embedder"])


@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_the_passage_that_answers(kb: KnowledgeBase, method: str) -> None:
    hits = kb.search("How cheap are Spot Instances?", 3, method)
    assert hits[0].passage.id == "docs/spot-instances.md#0"
    assert hits[0].passage.title == "Spot Instances"


@pytest.mark.parametrize("method", METHODS)
def test_results_come_best_first_k_at_most(kb: KnowledgeBase, method: str) -> None:
    scores = [h.score for h in kb.search("send a message to a queue", 5, method)]
    assert len(scores) == 5
    assert scores == sorted(scores, reverse=True)


def test_every_handbook_question_finds_its_passage_first(kb: KnowledgeBase) -> None:
    wanted = {q: f"docs/{name}#0" for name, doc in reader_docs().items() for q in doc["questions"]}
    found = {q: kb.search(q, 1)[0].passage.id for q in wanted}
    assert found == wanted


def test_api_names_are_found_by_their_words(kb: KnowledgeBase) -> None:
    assert kb.search("change message visibility timeout", 1, "bm25")[0].passage.id.startswith(
        "sqs/ChangeMessageVisibility")


def test_bm25_alone_returns_nothing_for_words_it_has_never_seen(kb: KnowledgeBase) -> None:
    assert kb.search("zyzzyva quixotic", 3, "bm25") == []


def test_hybrid_fuses_by_reciprocal_rank(kb: KnowledgeBase) -> None:
    best = kb.search("How cheap are Spot Instances?", 1)[0]
    assert best.score == pytest.approx(2 / 61)  # first in both rankings


def test_int8_vectors_with_row_scales_stay_within_a_step_of_float16(kb: KnowledgeBase, tmp_path: Path) -> None:
    save_dense(tmp_path, kb.dense, "int8")
    restored = load_dense(tmp_path)
    assert restored.dtype == np.float32
    assert np.abs(restored - kb.dense).max() <= np.abs(kb.dense).max(axis=1).max() / 254 + 1e-6


def test_unknown_method_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="unknown search method"):
        kb.search("queue", 1, "magic")

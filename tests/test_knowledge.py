"""Hybrid search over a real knowledge base (two services of the default AWS set + the handbook), the real MiniLM."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from export.local_models import reader_docs
from server.retrieval import ranking
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
        ("sqs/ChangeMessageVisibility", "awscli/sqs/change-message-visibility"))  # the operation or its example


def test_bm25_alone_returns_nothing_for_words_it_has_never_seen(kb: KnowledgeBase) -> None:
    assert kb.search("zyzzyva quixotic", 3, "bm25") == []


def test_rrf_fuses_by_reciprocal_rank(kb: KnowledgeBase) -> None:
    best = kb.search("How cheap are Spot Instances?", 1, "rrf")[0]
    assert best.score == pytest.approx(2 / 61)  # first in both rankings


def test_hybrid_scores_the_first_in_both_rankings_one_times_the_full_prior(kb: KnowledgeBase) -> None:
    best = kb.search("How cheap are Spot Instances?", 1)[0]  # your own docs have no service: the full prior
    assert best.score == pytest.approx(1 + ranking.PRIOR_WEIGHT)


def test_hybrid_spreads_its_top_five_over_documents(kb: KnowledgeBase) -> None:
    hits = kb.search("How do I send a message to a queue?", 5)
    assert len({h.passage.id.split("#")[0] for h in hits}) == 5


def test_the_prior_ranks_services_by_how_much_how_to_documentation_they_have(kb: KnowledgeBase) -> None:
    prior = {p.service: float(kb.prior[i]) for i, p in enumerate(kb.passages)}
    howto = Counter(p.service for p in kb.passages if p.source in ("awscli", "cdk"))
    most, fewer = sorted(howto, key=howto.__getitem__, reverse=True)
    assert (prior[None], prior[most]) == (1.0, 1.0)
    assert prior[fewer] == pytest.approx(np.log1p(howto[fewer]) / np.log1p(howto[most]))


def test_a_filter_keeps_only_its_services_and_sources(kb: KnowledgeBase) -> None:
    keep = kb.narrow(("sqs",), ("awscli",))
    hits = kb.search("send a message", 5, "hybrid", keep)
    assert {(h.passage.service, h.passage.source) for h in hits} == {("sqs", "awscli")}


def test_int8_vectors_with_row_scales_stay_within_a_step_of_float16(kb: KnowledgeBase, tmp_path: Path) -> None:
    save_dense(tmp_path, kb.dense, "int8")
    restored = load_dense(tmp_path)
    assert restored.dtype == np.float32
    assert np.abs(restored - kb.dense).max() <= np.abs(kb.dense).max(axis=1).max() / 254 + 1e-6


def test_unknown_method_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="unknown search method"):
        kb.search("queue", 1, "magic")

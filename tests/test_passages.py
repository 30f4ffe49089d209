"""Passages sized in the generator's tokens, overlapping, exact duplicates dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.knowledge.corpus import Document
from export.knowledge.passages import Splitter, split_all
from server.serving_dir import ServingDir

SENTENCES = [f"Queue {i} holds messages." for i in range(40)]


@pytest.fixture(scope="module")
def splitter(int8_serving: ServingDir) -> Splitter:
    return Splitter(int8_serving.file("tokenizer.json"), size=64, overlap=24)


def doc(text: str, id_: str = "d", title: str = "T") -> Document:
    return Document(id_, title, text, None, None, "test")


def test_no_passage_is_longer_than_its_size_in_generator_tokens(splitter: Splitter) -> None:
    passages = splitter.split(doc(" ".join(SENTENCES)))
    assert len(passages) > 3
    assert max(p.tokens for p in passages) <= 64
    assert [p.tokens for p in passages] == splitter.count([p.text for p in passages])


def test_each_passage_repeats_the_last_sentence_of_the_one_before(splitter: Splitter) -> None:
    passages = splitter.split(doc(" ".join(SENTENCES)))
    for before, after in zip(passages, passages[1:], strict=False):
        last = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last.rstrip(".")), (before.text, after.text)


def test_a_sentence_longer_than_a_passage_is_cut_into_word_runs(splitter: Splitter) -> None:
    passages = splitter.split(doc("word " * 400))
    assert max(p.tokens for p in passages) <= 64
    assert sum(p.text.count("word") for p in passages) >= 400


def test_exact_duplicates_are_dropped(splitter: Splitter) -> None:
    kept, dropped = split_all([doc("Same text.", "a"), doc("Same  text.", "b"), doc("Same text.", "c", "U")],
                              splitter)
    assert [p.id for p in kept] == ["a#0", "c#0"]
    assert dropped == 1


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (64, 40), (2000, 10)])
def test_bad_sizes_are_refused(int8_serving: ServingDir, size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="passage size"):
        Splitter(Path(int8_serving.file("tokenizer.json")), size, overlap)

"""Documents for the knowledge base: botocore's service documentation and a --docs tree."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from export.knowledge.corpus import botocore_documents, html_to_text, read_docs


@pytest.fixture(scope="module")
def sqs() -> dict[str, object]:
    return {d.id: d for d in botocore_documents(["sqs"])}


def test_an_operation_is_titled_by_service_and_name_and_links_to_the_api_reference(sqs: dict) -> None:  # type: ignore[type-arg]
    doc = sqs["sqs/SendMessage"]
    assert doc.title == "Amazon Simple Queue Service: SendMessage"
    assert doc.url == "https://docs.aws.amazon.com/goto/WebAPI/sqs-2012-11-05/SendMessage"
    assert doc.text.startswith("Delivers a message to the specified queue.")


def test_the_service_overview_is_a_document_without_markup(sqs: dict) -> None:  # type: ignore[type-arg]
    doc = sqs["sqs"]
    assert (doc.title, doc.service, doc.source) == ("Amazon Simple Queue Service", "sqs", "botocore")
    assert "<" not in doc.text and "&amp;" not in doc.text


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="botocore has no service not-a-service"):
        botocore_documents(["not-a-service"])


def test_html_is_stripped_entities_decoded_blocks_on_their_own_lines() -> None:
    assert html_to_text("<p>Tom &amp; Jerry&#39;s <b>queue</b></p><ul><li>one</li><li>two</li></ul>") == (
        "Tom & Jerry's queue\none\ntwo", None)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "setup.md").write_text("Intro line\n\n# Setting up\n\nRun **the** [installer](x.html).\n")
    (tmp_path / "page.html").write_text("<html><title>A page</title><script>x()</script><p>Hello &lt;world&gt;</p>")
    (tmp_path / "notes_on-costs.txt").write_text("Plain   text\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "binary.txt").write_bytes(b"abc\x00def")
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9")
    return tmp_path


def test_docs_take_titles_from_headings_or_file_names(docs: Path) -> None:
    found = {d.id: (d.title, d.text) for d in read_docs(docs)}
    assert found == {"docs/guide/setup.md": ("Setting up", "Intro line\nRun the installer."),
                     "docs/page.html": ("A page", "A page\nHello <world>"),
                     "docs/notes_on-costs.txt": ("notes on costs", "Plain text")}


def test_unreadable_and_binary_files_are_skipped_with_a_warning_naming_them(
        docs: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="iscoolgpt.export"):
        read_docs(docs)
    skipped = sorted(Path(r.args[0]).name for r in caplog.records)  # type: ignore[index, arg-type]
    assert skipped == ["binary.txt", "image.png", "latin1.md"]

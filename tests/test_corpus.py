"""Documents for the knowledge base from botocore: AWS's service documentation, stripped of markup."""

from __future__ import annotations

import pytest

from export.knowledge.corpus import botocore_documents, html_to_text


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

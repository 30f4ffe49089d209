"""The AWS sources beyond botocore, read from their real wheels: awscli's examples, CDK guides, CloudFormation."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from export.knowledge import awscli, cdk, cloudformation
from export.knowledge.corpus import Document
from export.knowledge.services import resolve, resolve_module
from export.knowledge.sources import DEFAULT, SOURCES, collect, parse
from export.knowledge.wheels import default_dir, fetch
from export.source import ExportError


def _wheel(name: str) -> Iterator[zipfile.ZipFile]:
    source = SOURCES[name]
    with zipfile.ZipFile(fetch(default_dir(), source.package, source.version)) as wheel:
        yield wheel


@pytest.fixture(scope="module")
def examples() -> Iterator[dict[str, Document]]:
    for wheel in _wheel("awscli"):
        yield {d.id: d for d in awscli.documents(wheel, {"s3", "sqs", "cloudfront"})}


@pytest.fixture(scope="module")
def guides() -> Iterator[list[Document]]:
    for wheel in _wheel("cdk"):
        yield cdk.documents(wheel, {"s3", "cloudfront"})


@pytest.fixture(scope="module")
def resources() -> Iterator[dict[str, Document]]:
    for wheel in _wheel("cloudformation"):
        yield {d.id: d for d in cloudformation.documents(wheel, {"s3"})}


@pytest.mark.parametrize(("name", "service"), [
    ("s3api", "s3"), ("configservice", "config"), ("ElasticLoadBalancingV2", "elbv2"),
    ("CertificateManager", "acm"), ("KinesisFirehose", "firehose"), ("Cognito", "cognito-idp"),
    ("Logs", "logs"), ("no-such-thing", None)])
def test_names_other_packages_give_a_service_resolve_to_botocores_id(name: str, service: str | None) -> None:
    assert resolve(name) == service


def test_a_cdk_module_is_its_service_with_trailing_parts_dropped() -> None:
    assert (resolve_module("aws-s3-deployment"), resolve_module("aws-stepfunctions-tasks"),
            resolve_module("pipelines")) == ("s3", "stepfunctions", None)


def test_a_cli_example_keeps_its_prose_and_command_and_drops_its_output(examples: dict[str, Document]) -> None:
    doc = examples["awscli/cloudfront/create-invalidation"]
    assert doc.title == "aws cloudfront create-invalidation: To create an invalidation for a CloudFront distribution"
    assert "aws cloudfront create-invalidation --distribution-id EDFDVBD6EXAMPLE --paths" in doc.text
    assert ('"Location"' not in doc.text, doc.service, doc.source) == (True, "cloudfront", "awscli")


def test_a_cli_examples_command_is_kept_as_written_and_its_guide_is_its_link(examples: dict[str, Document]) -> None:
    doc = examples["awscli/s3/website"]
    assert doc.command == ("aws s3 website s3://amzn-s3-demo-bucket/ \\\n    --index-document index.html \\\n"
                           "    --error-document error.html")
    assert doc.url == "https://docs.aws.amazon.com/AmazonS3/latest/userguide/WebsiteHosting.html"


def test_files_with_several_examples_give_one_document_each(examples: dict[str, Document]) -> None:
    sync = [d for i, d in examples.items() if i.startswith("awscli/s3/sync/")]
    assert len(sync) >= 3
    assert sync[0].title == "aws s3 sync: Sync all local objects to the specified bucket"


def test_s3api_examples_are_s3s_and_only_the_wanted_services_are_read(examples: dict[str, Document]) -> None:
    assert examples["awscli/s3api/put-bucket-versioning"].service == "s3"
    assert {d.service for d in examples.values()} == {"s3", "sqs", "cloudfront"}


def test_reading_rst_literal_blocks_drops_json_and_keeps_commands() -> None:
    rst = ("**To list queues**\n\nThis lists your queues. ::\n\n    aws sqs list-queues\n\nOutput::\n\n"
           "    {\n        \"QueueUrls\": []\n    }\n\nFor more, see `Queues <https://example.com/q>`__.\n")
    assert awscli.parse("sqs", "list-queues", rst) == [
        ("To list queues", "This lists your queues.\naws sqs list-queues\nFor more, see Queues.",
         "aws sqs list-queues", "https://example.com/q")]


def test_cdk_guides_are_prose_sections_without_code(guides: list[Document]) -> None:
    titles = [d.title for d in guides]
    assert "AWS CDK, Amazon S3 Construct Library: Website redirection" in titles
    assert not any("```" in d.text or "new s3.Bucket(" in d.text for d in guides)
    assert {d.service for d in guides} == {"s3", "cloudfront"}


def test_a_cdk_guide_links_to_its_module_readme(guides: list[Document]) -> None:
    doc = next(d for d in guides if d.id.startswith("cdk/aws-s3/"))
    assert doc.url == "https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_s3-readme.html"


def test_a_cloudformation_resource_is_its_description_and_its_properties(resources: dict[str, Document]) -> None:
    doc = resources["cloudformation/AWS::S3::Bucket"]
    assert doc.text.startswith("The AWS::S3::Bucket resource creates an Amazon S3 bucket")
    assert "\nBucketName: " in doc.text and "](" not in doc.text
    assert doc.url == "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucket.html"


@pytest.mark.parametrize(("value", "names"), [
    ("default", DEFAULT), ("none", ()), ("cdk, botocore", ("botocore", "cdk")),
    ("default,kubernetes", (*DEFAULT, "kubernetes"))])
def test_source_lists_parse_in_a_stable_order(value: str, names: tuple[str, ...]) -> None:
    assert parse(value) == names


def test_an_unknown_source_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown knowledge source 'awscl'; choose from default, none, botocore"):
        parse("botocore,awscl")


def test_collect_records_each_sources_package_version_and_licence() -> None:
    docs, record = collect(("botocore", "awscli"), ("sqs",), default_dir())
    assert record["awscli"]["package"] == "awscli" and record["awscli"]["licence"] == "Apache-2.0"
    assert (record["awscli"]["services"], {d.source for d in docs}) == (1, {"botocore", "awscli"})


def test_a_wheel_that_cannot_be_had_is_one_line_saying_how_to_get_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip then has nowhere to download from: as offline
    with pytest.raises(ExportError) as caught:
        collect(("awscli",), None, tmp_path / "wheels")
    message = str(caught.value)
    assert message.startswith(f"awscli: its wheel is not in {tmp_path / 'wheels'} and pip could not download it")
    assert message.endswith(f"run: pip download --no-deps awscli==1.46.3 -d {tmp_path / 'wheels'}")
    assert "\n" not in message


def test_a_corrupt_wheel_is_named_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "awscli-1.46.3-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="awscli: .* is not a readable wheel"):
        collect(("awscli",), None, tmp_path)


def test_attached_examples_join_their_operation_and_the_rest_stay_apart() -> None:
    docs, _ = collect(("botocore", "awscli"), ("sqs",), default_dir())
    joined = {d.id: d for d in awscli.attach(docs)}
    assert "Example: To send a message.\nThis example sends a message" in joined["sqs/SendMessage"].text
    assert joined["sqs/SendMessage"].command is not None and "awscli/sqs/send-message" not in joined

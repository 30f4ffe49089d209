"""``python -m export --knowledge/--docs``: the knowledge base and the int8 embedder, built and checked."""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import onnx
import pytest

from server.serving_dir import ServingDirError, open_serving_dir
from tests.conftest import READER_SERVICES, run_export


@pytest.fixture(scope="module")
def manifest(grounded_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((grounded_dir / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_manifest_records_the_corpus_and_its_sources(manifest: dict) -> None:  # type: ignore[type-arg]
    knowledge = manifest["knowledge"]
    botocore_record = knowledge["sources"]["botocore"]
    assert (botocore_record["version"], botocore_record["licence"]) == (botocore.__version__, "Apache-2.0")
    assert botocore_record["services"] == len(READER_SERVICES.split(","))
    assert knowledge["passages"] >= knowledge["documents"] > 6  # the handbook's six, and the services' docs


def test_every_default_source_is_recorded_with_its_package_version_and_licence(manifest: dict) -> None:  # type: ignore[type-arg]
    sources = manifest["knowledge"]["sources"]
    assert {n: (s["package"], s["licence"]) for n, s in sources.items() if n != "docs"} == {
        "botocore": ("botocore", "Apache-2.0"), "awscli": ("awscli", "Apache-2.0"),
        "cdk": ("aws-cdk-lib", "Apache-2.0"), "cloudformation": ("cfn-lint", "MIT-0")}
    assert all(s["documents"] > 0 and s["services"] == 2 for n, s in sources.items() if n != "docs")


def test_every_knowledge_file_is_checksummed(manifest: dict) -> None:  # type: ignore[type-arg]
    names = {n for n in manifest["files"] if n.startswith(("knowledge/", "embedder/"))}
    assert names == {"embedder/model.onnx", "embedder/tokenizer.json", "knowledge/passages.jsonl",
                     "knowledge/dense.npy", "knowledge/bm25_vocab.json", "knowledge/bm25_indptr.npy",
                     "knowledge/bm25_docs.npy", "knowledge/bm25_weights.npy"}


def test_passages_are_one_json_object_a_line(grounded_dir: Path, manifest: dict) -> None:  # type: ignore[type-arg]
    lines = (grounded_dir / "knowledge/passages.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == manifest["knowledge"]["passages"]
    assert set(first) == {"id", "title", "text", "url", "service", "source", "tokens", "command"}


def test_embedder_is_int8_and_validated_against_pytorch(grounded_dir: Path, manifest: dict) -> None:  # type: ignore[type-arg]
    embedder = manifest["embedder"]
    ops = {n.op_type for n in onnx.load(str(grounded_dir / "embedder/model.onnx")).graph.node}
    assert (embedder["precision"], embedder["pooling"], embedder["dim"]) == ("int8", "mean", 384)
    assert embedder["validation"]["min_cosine"] >= 0.99
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_a_corrupt_passage_file_is_caught_at_start_up(grounded_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(grounded_dir, copy)
    path = copy / "knowledge/passages.jsonl"
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ServingDirError, match="passages.jsonl does not match its sha256"):
        open_serving_dir(copy)


@pytest.mark.slow
def test_embedder_below_the_cosine_threshold_fails_the_export_and_writes_nothing(
        minilm: Path, handbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    done = run_export("--local-model", "tiny", "--out", str(out), "--docs", str(handbook),
                      "--embedder", str(minilm), "--min-cosine", "1.01")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("export: error: embedder validation failed: min cosine")
    assert not out.exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--services", "sqs"], 2,
     "export: error: --services needs an AWS source in --knowledge (botocore, awscli, cdk, cloudformation)"),
    (["--knowledge", "botocore,awscl"], 2, "export: error: unknown knowledge source 'awscl'; choose from default, "
     "none, botocore, awscli, cdk, cloudformation, azure, kubernetes"),
    (["--knowledge", "default", "--services", "sqs,nope"], 1, "export: error: botocore has no service nope"),
])
def test_bad_knowledge_options_are_one_line_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    done = run_export("--local-model", "tiny", "--out", str(tmp_path / "x"), *args)
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, lines[-1]) == (code, message)
    assert code == 1 or len(lines) == 1  # a usage error is found before anything runs


def test_a_source_whose_wheel_cannot_be_had_fails_the_export_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    done = run_export("--local-model", "tiny", "--out", str(out), "--knowledge", "awscli", "--services", "sqs",
                      "--wheels", str(tmp_path / "empty"), PIP_NO_INDEX="1")
    last = done.stderr.strip().splitlines()[-1]
    assert (done.returncode, last.startswith("export: error: awscli: its wheel is not in")) == (1, True)
    assert last.endswith(f"run: pip download --no-deps awscli==1.46.3 -d {tmp_path / 'empty'}") and not out.exists()


def test_an_empty_docs_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = run_export("--local-model", "tiny", "--out", str(tmp_path / "x"), "--docs", str(tmp_path / "empty"))
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (
        1, "export: error: the knowledge base would be empty: no documents found")

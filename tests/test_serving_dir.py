"""The serving directory check the server runs at start-up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.serving_dir import ServingDirError, open_serving_dir
from tests.conftest import ROOT


@pytest.fixture
def copy(int8_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(int8_dir, tmp_path / "copy"))


def test_a_flipped_byte_is_caught_by_the_checksum(copy: Path) -> None:
    target = copy / "decoder_with_past_model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ServingDirError, match="decoder_with_past_model.onnx does not match its sha256"):
        open_serving_dir(copy)


def test_a_missing_file_is_named(copy: Path) -> None:
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ServingDirError, match=r"tokenizer.json is missing$"):
        open_serving_dir(copy)


def test_server_exits_with_one_line_on_a_missing_directory(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "server"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "MODEL_DIR": str(tmp_path / "nothing")})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "nothing does not exist (run `python -m export` first)" in done.stderr

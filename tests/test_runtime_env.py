"""The runtime image's environment, built as a virtualenv from the file the Dockerfile installs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, start_server

MB = 1e6


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)  # not this venv: nothing may leak in
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    requirements = ROOT / "requirements" / "image.txt"  # what the Dockerfile's runtime stage installs
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-r", str(requirements)],
                   check=True, timeout=900, capture_output=True)
    subprocess.run(["bash", str(ROOT / "scripts/prune_runtime.sh"), str(site_packages(venv))], check=True, timeout=120)
    return venv


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def serve_from(venv: Path, model_dir: Path, tmp: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m server`` run by the runtime environment's interpreter."""
    log = tmp.mktemp("runtime-server") / "server.log"
    proc, url = start_server(model_dir, log, python=str(venv / "bin" / "python"))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def runtime_server(runtime_venv: Path, int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_from(runtime_venv, int8_dir, tmp_path_factory)


def test_runtime_environment_has_no_torch_transformers_or_optimum(runtime_venv: Path) -> None:
    probe = "import importlib.util as u; print([m for m in ('torch', 'transformers', 'optimum') if u.find_spec(m)])"
    done = subprocess.run([str(runtime_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]"


def test_runtime_site_packages_fit_in_150_mb(runtime_venv: Path) -> None:
    megabytes = size(site_packages(runtime_venv)) / MB
    print(f"runtime site-packages: {megabytes:.1f} MB")  # reported with -s; the target is <= 150 MB
    assert megabytes <= 150


def test_server_from_the_runtime_environment_answers(runtime_server: str) -> None:
    response = httpx.post(f"{runtime_server}/chat/", json={"question": "What is AWS EC2?", "temperature": 0})
    assert response.status_code == 200
    assert response.json()["answer"] == "Amazon EC2 provides resizable virtual servers in the AWS cloud."


@pytest.fixture(scope="module")
def runtime_grounded(runtime_venv: Path, grounded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_from(runtime_venv, grounded_dir, tmp_path_factory)


def test_runtime_environment_retrieves_and_answers_grounded(runtime_grounded: str) -> None:
    response = httpx.post(f"{runtime_grounded}/chat/", json={"question": "How cheap are Spot Instances?",
                                                             "temperature": 0, "k": 1})
    body = response.json()
    assert body["answer"] == "Spot Instances use spare EC2 capacity at a discount of up to ninety percent."
    assert [s["id"] for s in body["sources"]] == ["docs/spot-instances.md#0"]

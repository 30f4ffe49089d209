"""Start, probe, measure and always stop server processes (ours and the baseline) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import ROOT, ModelChoice

HOST = "127.0.0.1"  # every server and every load generator stays on loopback
HEALTH_POLL_S = 0.02  # how often a starting server is probed; small against the seconds measured
STOP_GRACE_S = 10.0


def free_port() -> int:
    """A port nobody listens on now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_command(kind: str, choice: ModelChoice, serving: Path | None, port: int,
                   extra_env: dict[str, str] | None = None,
                   cpus: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Command and environment for ``ours`` (python -m server) or ``baseline`` (the old PyTorch service);
    ``cpus`` ("0", "0-1") pins it with taskset, as a task with fewer vCPUs would run."""
    env = dict(os.environ)
    env.update({"PORT": str(port), "HOST": HOST, "LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)})
    if kind == "ours":
        assert serving is not None
        env["MODEL_DIR"] = str(serving)
        cmd = [sys.executable, "-m", "server"]
    elif kind == "baseline":
        env["MODEL_DIR"] = str(choice.hf_dir)
        env["MODEL_NAME"] = choice.source_model
        cmd = [sys.executable, "-m", "benchmarks.baseline_server"]
    else:
        raise ValueError(kind)
    env.update(extra_env or {})
    return (["taskset", "-c", cpus, *cmd] if cpus else cmd), env


def health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(proc: subprocess.Popen[bytes], port: int, began: float, timeout_s: float) -> float:
    """Seconds from ``began`` to the first 200 from /health; raise if the process dies or times out."""
    deadline = began + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before /health answered")
        if health_ok(port):
            return time.perf_counter() - began
        time.sleep(HEALTH_POLL_S)
    raise TimeoutError(f"no 200 from /health within {timeout_s:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_GRACE_S)
    except ProcessLookupError:
        pass


@contextmanager
def running_server(kind: str, choice: ModelChoice, serving: Path | None, timeout_s: float,
                   extra_env: dict[str, str] | None = None, sampler: RssSampler | None = None,
                   cpus: str | None = None) -> Iterator[tuple[int, float, subprocess.Popen[bytes]]]:
    """Start a server, wait for /health, yield (port, seconds to healthy, process); always stop it."""
    port = free_port()
    cmd, env = server_command(kind, choice, serving, port, extra_env, cpus)
    began = time.perf_counter()
    # Own process group, so stop() takes uvicorn and anything it spawned.
    # stderr goes to a file, not a pipe: a chatty server must never block on a full pipe.
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errlog,
                            start_new_session=True)
    try:
        if sampler is not None:
            sampler.start(proc.pid)
        try:
            seconds = wait_healthy(proc, port, began, timeout_s)
        except (RuntimeError, TimeoutError) as exc:
            stop(proc)
            errlog.seek(0)
            err = errlog.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} server failed to start: {exc}\n{err}") from None
        yield port, seconds, proc
    finally:
        if sampler is not None:
            sampler.stop()
        stop(proc)
        errlog.close()


class RssSampler:
    """Polls the resident memory of a process and its children every ``interval_s``; keeps the peak."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self.samples = 0
        self.mark_bytes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.current = 0

    def start(self, pid: int) -> None:
        self._pid = pid
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def mark(self, name: str) -> None:
        """Remember the current tree RSS under ``name`` (e.g. idle after start-up)."""
        self.mark_bytes[name] = tree_rss(self._pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.current = tree_rss(self._pid)
            self.peak = max(self.peak, self.current)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def tree_rss(pid: int) -> int:
    """RSS bytes of ``pid`` plus all its descendants (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total

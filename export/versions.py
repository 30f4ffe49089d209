"""Installed versions of named distributions, for manifests and benchmark reports."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata


def installed_versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` for each of ``names`` that is installed; missing ones are left out."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found

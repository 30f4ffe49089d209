"""Where a model comes from: a local directory as it is, or a hub id downloaded to the local cache.

Used for the generator and for the embedding model alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ExportError(Exception):
    """A user-facing export failure: one line says what went wrong."""


class HubUnreachable(ExportError):
    """The hub could not be reached (offline, or no connection) and the model is not in the local cache."""


@dataclass(frozen=True)
class Source:
    path: Path  # a local directory holding config, weights and tokenizer
    model: str
    revision: str | None


def resolve(model: str, revision: str | None, token: str | None) -> Source:
    """A local model directory as is, or a hub model id downloaded to the local cache."""
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ExportError(f"{local} is a directory without config.json: not a model")
        return Source(local.resolve(), local.resolve().name, None)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        path = snapshot_download(
            model, revision=revision, token=token,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"],
        )
    except GatedRepoError:
        raise ExportError(f"{model} is gated: set HF_TOKEN to a token that has access") from None
    except RepositoryNotFoundError:
        raise ExportError(f"model {model!r} was not found on the hub (or needs HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise ExportError(f"model {model!r} has no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        raise HubUnreachable(f"the Hugging Face hub is unreachable and {model} is not in the local cache") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"could not fetch {model!r}: {first}") from None
    return Source(Path(path), model, Path(path).name)

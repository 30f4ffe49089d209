"""``python -m server``: check settings and the serving directory, then serve with uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from server.app import create_app
from server.serving_dir import ServingDirError, open_serving_dir
from server.settings import SettingsError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        # Fail before binding the port, with one line, if the model cannot be served.
        open_serving_dir(settings.model_dir, verify=settings.verify_checksums)
    except (SettingsError, ServingDirError) as exc:
        logging.getLogger("iscoolgpt").error("%s", exc)
        return 1
    # The lifespan re-reads nothing: it gets these very settings.
    settings = settings.model_copy(update={"verify_checksums": False})
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, timeout_graceful_shutdown=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

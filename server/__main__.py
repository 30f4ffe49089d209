"""``python -m server``: check settings and the serving directory, then serve with uvicorn.

SIGTERM starts a graceful drain: /health turns 503 and new chats are refused,
requests in flight finish (up to DRAIN_SECONDS), then the process exits 0.
A second SIGTERM or SIGINT exits at once.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import FrameType

import uvicorn

from server.admission.drain import Drain
from server.app import create_app
from server.errors import first_line
from server.observability import JsonFormatter
from server.serving_dir import ServingDirError, open_serving_dir
from server.settings import SettingsError, load_settings
from server.storage import describe, open_store, probe

log = logging.getLogger("iscoolgpt")


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM turned into a drain before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining:  # a second signal: stop now
            super().handle_exit(sig, frame)
            return
        log.info("signal %d: draining %d request(s) for up to %.0fs", sig, self.drain.in_flight, self.drain_seconds)
        self.drain.begin()
        threading.Thread(target=self._exit_when_idle, name="drain", daemon=True).start()

    def _exit_when_idle(self) -> None:
        idle = self.drain.wait_idle(self.drain_seconds)
        log.info("drain %s; shutting down", "complete" if idle else "time is up")
        self.should_exit = True


def check_database(url: str) -> None:
    """Open the database and bring its schema up to date (the lifespan will find nothing left to do)."""
    probe(url)
    store = open_store(url)
    if store is None:
        return
    try:
        store.migrate()
    finally:
        store.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        # Fail before binding the port, with one line, if the model cannot be served.
        open_serving_dir(settings.model_dir, verify=settings.verify_checksums)
    except (SettingsError, ServingDirError) as exc:
        log.error("%s", exc)
        return 1
    # Nor a database that cannot be reached or migrated: a task that would answer 500s must not start.
    try:
        check_database(settings.database_url)
    except Exception as exc:  # unreachable, refused, no permission to migrate: all one line
        log.error("database %s: %s", describe(settings.database_url), first_line(exc))
        return 1
    if settings.log_format == "json":  # every line from here on, uvicorn's own included, is one JSON object
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    # The lifespan gets these very settings (checksums already verified).
    settings = settings.model_copy(update={"verify_checksums": False})
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            # In JSON mode uvicorn's loggers go through the root handler, not their own.
                            log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
                            access_log=False, timeout_keep_alive=settings.keep_alive_seconds,
                            timeout_graceful_shutdown=max(1, int(settings.drain_seconds)))
    DrainingServer(config, app.state.drain, settings.drain_seconds).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

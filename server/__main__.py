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

from server.app import create_app
from server.drain import Drain
from server.serving_dir import ServingDirError, open_serving_dir
from server.settings import SettingsError, load_settings

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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        # Fail before binding the port, with one line, if the model cannot be served.
        open_serving_dir(settings.model_dir, verify=settings.verify_checksums)
    except (SettingsError, ServingDirError) as exc:
        log.error("%s", exc)
        return 1
    # The lifespan gets these very settings (checksums already verified).
    settings = settings.model_copy(update={"verify_checksums": False})
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            access_log=False, timeout_graceful_shutdown=max(1, int(settings.drain_seconds)))
    DrainingServer(config, app.state.drain, settings.drain_seconds).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

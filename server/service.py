"""Everything the handlers need, loaded once in the lifespan and closed at shutdown."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from server.batcher import Batcher
from server.engine import Engine
from server.serving_dir import ServingDir, open_serving_dir
from server.settings import Settings
from server.text import TextCodec

log = logging.getLogger("iscoolgpt")


@dataclass
class Service:
    """The loaded model and its batcher."""

    settings: Settings
    serving: ServingDir
    codec: TextCodec
    batcher: Batcher
    model_name: str
    load_seconds: float

    @classmethod
    def load(cls, settings: Settings) -> Service:
        """Check the serving directory, open the sessions, start the batcher."""
        began = time.perf_counter()
        serving = open_serving_dir(settings.model_dir, verify=settings.verify_checksums)
        codec = TextCodec(serving.file("tokenizer.json"), serving.generation.clean_up_tokenization_spaces)
        engine = Engine(serving, num_threads=settings.num_threads)
        batcher = Batcher(engine, serving.generation.eos_token_id, settings.max_batch_size,
                          settings.batch_wait_ms / 1000.0, settings.max_queue)
        batcher.start()
        name = settings.model_name or serving.source_model
        if settings.model_name and settings.model_name != serving.source_model:
            log.warning("MODEL_NAME=%s but %s was exported from %s",
                        settings.model_name, settings.model_dir, serving.source_model)
        service = cls(settings, serving, codec, batcher, name, time.perf_counter() - began)
        log.info("loaded %s from %s (%s) in %.2fs", name, settings.model_dir,
                 serving.manifest.get("precision"), service.load_seconds)
        return service

    def close(self) -> None:
        self.batcher.stop()

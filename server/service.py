"""Everything the handlers need, loaded once in the lifespan and closed at shutdown."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from server.admission.drain import Drain
from server.errors import APIError
from server.generation.batcher import Batcher, Result
from server.generation.engine import Engine
from server.generation.text import TextCodec
from server.history import History
from server.identity import Identifier
from server.observability import Metrics
from server.retrieval.knowledge import KnowledgeBase
from server.serving_dir import ServingDir, open_serving_dir
from server.settings import Settings
from server.storage import open_store

log = logging.getLogger("iscoolgpt")


@dataclass
class Service:
    """The loaded model, its batcher, the knowledge base, the conversation store, and the bookkeeping."""

    settings: Settings
    serving: ServingDir
    codec: TextCodec
    batcher: Batcher
    drain: Drain
    metrics: Metrics
    identity: Identifier  # API keys (as digests), the JWT verifier, the rate limit
    model_name: str
    knowledge: KnowledgeBase | None  # None: the serving directory has no knowledge base; answers are ungrounded
    history: History  # conversations, in SQLite or PostgreSQL (or none)

    @classmethod
    def load(cls, settings: Settings, drain: Drain, metrics: Metrics) -> Service:
        """Check the serving directory, open the sessions and the database (migrated), start the batcher.

        Raises :class:`server.storage.StoreUnavailable` if the database cannot be reached or migrated.
        """
        began = time.perf_counter()
        # The database first: a server that cannot keep conversations must not start answering.
        store = open_store(settings.database_url)
        try:
            applied = store.migrate() if store is not None else []
        except BaseException:
            if store is not None:
                store.close()
            raise
        serving = open_serving_dir(settings.model_dir, verify=settings.verify_checksums)
        codec = TextCodec(serving.file("tokenizer.json"), serving.generation.clean_up_tokenization_spaces)
        engine = Engine(serving, num_threads=settings.num_threads)
        batcher = Batcher(engine, serving.generation.eos_token_id, settings.max_batch_size,
                          settings.batch_wait_ms / 1000.0, settings.max_queue)
        batcher.start()
        metrics.queue_depth.set_function(lambda: batcher.waiting)
        metrics.active.set_function(lambda: batcher.active)
        name = settings.model_name or serving.source_model
        if settings.model_name and settings.model_name != serving.source_model:
            log.warning("MODEL_NAME=%s but %s was exported from %s",
                        settings.model_name, settings.model_dir, serving.source_model)
        identity = Identifier(settings)
        identity.warm()
        # The knowledge base and its embedder: loaded now, so no request ever waits for them. Its one BLAS
        # call per query (a matrix-vector product, memory-bound) gets one thread: OpenBLAS's threads spin
        # after each call and took the cores from the encoder that runs next (a 331-token prefill: 83 ms
        # after a retrieval against 36 ms without one, measured over HTTP on 2 vCPUs).
        threadpool_limits(limits=1, user_api="blas")
        knowledge = (KnowledgeBase.load(serving.path, serving.manifest["embedder"], settings.embed_threads)
                     if serving.has_knowledge else None)
        history = History(store, metrics, settings.history_turns)
        service = cls(settings, serving, codec, batcher, drain, metrics, identity, name, knowledge, history)
        log.info("loaded %s from %s (%s) in %.2fs; %s; history %s%s; auth: %s", name, settings.model_dir,
                 serving.manifest.get("precision"), time.perf_counter() - began,
                 f"knowledge base of {len(knowledge.passages)} passages" if knowledge else "no knowledge base",
                 store.kind if store else "off", f" (migrated to {applied[-1]})" if applied else "",
                 ", ".join(identity.modes))
        return service

    @property
    def embedder_name(self) -> str | None:
        """The embedding model's name, as /v1/embeddings and /v1/models report it."""
        section = self.serving.manifest.get("embedder")
        return str(section.get("name") or section["source"]) if section else None

    def record(self, fields: dict[str, Any], question: str, prompt_tokens: int, result: Result) -> None:
        """Put a finished request into the metrics and its log line."""
        m = self.metrics
        m.queue_seconds.observe(result.queue_seconds)
        m.batch_size.observe(result.batch_size)
        m.tokens.inc(len(result.tokens))
        if result.tokens:
            m.time_per_token.observe(result.decode_seconds / len(result.tokens))
        fields.update(queue_ms=round(result.queue_seconds * 1000, 2),
                      prefill_ms=round(result.prefill_seconds * 1000, 2),
                      decode_ms=round(result.decode_seconds * 1000, 2),
                      prompt_tokens=prompt_tokens, completion_tokens=len(result.tokens),
                      batch_size=result.batch_size, finish_reason=result.finish_reason)
        if self.settings.log_questions:
            fields["question"] = question

    def count_abandoned(self, exc: APIError) -> None:
        """Count a generation stopped early because its client left or its deadline passed."""
        if exc.error_type in {"cancelled", "timeout"}:
            self.metrics.cancelled.labels(exc.error_type).inc()

    def close(self) -> None:
        self.batcher.stop()
        self.history.close()

"""The last stage of the answer pipeline: an answered request's metrics, log line and conversation turn,
and the ``Server-Timing`` header that says what each stage cost."""

from __future__ import annotations

import time
from typing import Any

from server.generation.batcher import Result
from server.pipeline import Ask, Prepared
from server.service import Service
from server.storage.store import Turn


async def record(service: Service, fields: dict[str, Any], ask: Ask, prepared: Prepared, result: Result,
                 answer: str) -> None:
    """Metrics and the log line, then the turn (one transaction, only now that the answer is whole).

    A store that fails here is a 503 (or an ``error`` event) although the answer exists: the client
    must not believe a turn was kept that was not.
    """
    service.record(fields, ask.question, len(prepared.prompt_ids), result)
    fields.update({k: round(v, 2) for k, v in prepared.timings.items()})
    fields.update(grounded=prepared.grounded, sources=len(prepared.sources))
    if prepared.conversation_id is not None:
        usage = {"prompt_tokens": len(prepared.prompt_ids), "completion_tokens": len(result.tokens)}
        timings = {**prepared.timings, "queue_ms": result.queue_seconds * 1000,
                   "prefill_ms": result.prefill_seconds * 1000, "decode_ms": result.decode_seconds * 1000}
        turn = Turn(ask.question, answer, prepared.sources_json(), usage, str(result.finish_reason),
                    {k: round(v, 2) for k, v in timings.items()})
        began = time.perf_counter()
        await service.history.append(ask.user, prepared.conversation_id, turn, prepared.new_conversation)
        prepared.timings["record_ms"] = (time.perf_counter() - began) * 1000
        fields["record_ms"] = round(prepared.timings["record_ms"], 2)


def server_timing(prepared: Prepared, result: Result) -> str:
    """The ``Server-Timing`` header of a whole answer: what each stage took, in milliseconds."""
    stages = {"history": prepared.timings.get("history_ms"), "retrieval": prepared.timings.get("retrieval_ms"),
              "prompt": prepared.timings.get("prompt_ms"), "queue": result.queue_seconds * 1000,
              "prefill": result.prefill_seconds * 1000, "decode": result.decode_seconds * 1000,
              "record": prepared.timings.get("record_ms")}
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in stages.items() if ms is not None)

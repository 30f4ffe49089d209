"""The OLD service, reproduced for comparison: a transformers pipeline on PyTorch behind Starlette.

``MODEL_DIR=<transformers dir> PORT=8081 python -m benchmarks.baseline_server``. Same routes as the
old service: GET /health and POST /chat/ {"question"} -> {"answer", "model"}. It also takes optional
``max_new_tokens`` and ``temperature`` so the benchmarks can ask both servers for the same work.
Generation runs in a worker thread under a lock (one request at a time, like the old pipeline), so the
event loop still answers /health while a request decodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.prompt import DEFAULT_TEMPLATE, render

DEFAULT_MAX_NEW_TOKENS = int(os.environ.get("MAX_NEW_TOKENS", "128"))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    # Imported here, as the old service paid for them at start-up: torch and transformers load the model.
    from transformers import pipeline

    model_dir = os.environ.get("MODEL_DIR", "google/flan-t5-small")
    pipe = await asyncio.to_thread(pipeline, "text2text-generation", model=model_dir, device="cpu")
    yield {"pipe": pipe, "lock": threading.Lock(), "model": os.environ.get("MODEL_NAME", model_dir)}


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "model": request.state.model})


async def chat(request: Request) -> JSONResponse:
    try:
        body = json.loads(await request.body())
        question = str(body["question"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"detail": "body must be JSON with a question"}, status_code=422)
    max_new = int(body.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
    temperature = float(body.get("temperature", 0.0) or 0.0)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0}
    if temperature > 0:
        kwargs["temperature"] = temperature

    def generate() -> str:
        with request.state.lock:
            out = request.state.pipe(render(DEFAULT_TEMPLATE, question), **kwargs)
        return str(out[0]["generated_text"])

    answer = await run_in_threadpool(generate)
    return JSONResponse({"answer": answer, "model": request.state.model})


app = Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/chat/", chat, methods=["POST"]),
                        Route("/chat", chat, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    """Serve the baseline with uvicorn, as ``python -m server`` serves ours."""
    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8081")),
                log_level=os.environ.get("LOG_LEVEL", "warning"))


if __name__ == "__main__":
    main()

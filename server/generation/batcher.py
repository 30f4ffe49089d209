"""Continuous batching: one worker thread runs every request's decode loop together.

Requests wait in a bounded queue. Between two decoder steps the worker lets
waiting requests join (one shared encoder run and first step for all of
them), and finished or cancelled ones leave, so a long answer never holds up a
short one and the event loop never runs a model pass.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from server.generation.engine import DecoderState, Engine
from server.generation.sampling import FinishReason, SamplingParams, check_stop, choose_token

log = logging.getLogger("iscoolgpt.batcher")


class QueueFull(Exception):
    """Too many requests are already waiting."""


class GenerationError(Exception):
    """The model failed on a batch; the request did not complete."""


@dataclass(frozen=True)
class Result:
    """What a finished request gets back."""

    tokens: list[int]
    finish_reason: FinishReason
    queue_seconds: float  # submit -> its prefill began
    decode_seconds: float  # first token chosen -> finished
    batch_size: int  # largest batch the request was part of
    prefill_seconds: float = 0.0  # the encoder run and first decoder step it shared with its joiners


@dataclass(eq=False)
class Job:
    """One request inside the batcher.

    The worker thread owns ``tokens``; the event loop sees them in ``received``, handed over with
    ``arrived`` set once per decoder step for the whole batch, never once per token per request.
    """

    prompt: list[int]
    params: SamplingParams
    future: asyncio.Future[Result]
    loop: asyncio.AbstractEventLoop
    rng: np.random.Generator
    submitted: float = field(default_factory=time.perf_counter)
    joined: float = 0.0  # its prefill began
    started: float = 0.0  # its prefill ended
    tokens: list[int] = field(default_factory=list)  # the worker's
    batch_size: int = 0
    received: list[int] = field(default_factory=list)  # the event loop's copy, in order
    # False: the tokens come with the outcome, in one wake-up, for a reader that only wants the whole answer.
    every_token: bool = True
    sent: int = 0  # tokens handed over so far (the worker's count)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set when tokens or the outcome arrive
    done: bool = False
    cancelled: bool = False  # set from the event loop; the worker drops the row at its next step

    def settle(self, outcome: Result | BaseException) -> None:
        """Hand the outcome to the waiting coroutine, from the worker thread."""
        _post([(self, [], outcome)])


# A job, its new tokens and its outcome (once it has one), as the worker hands them over.
Delivery = tuple[Job, list[int], "Result | BaseException | None"]


def _post(deliveries: list[Delivery]) -> None:
    """One wake-up per event loop for all of a step's deliveries (callbacks run in order, so a job's
    tokens always arrive before its outcome)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Delivery]] = {}
    for delivery in deliveries:
        by_loop.setdefault(delivery[0].loop, []).append(delivery)
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, batch)
        except RuntimeError:  # that loop has closed: nobody is waiting any more
            pass


def _deliver(batch: list[Delivery]) -> None:
    """On the event loop: each job's new tokens, then its outcome, then a wake-up for its reader."""
    for job, tokens, outcome in batch:
        job.received += tokens
        if outcome is not None and not job.future.done():  # a caller that gave up has cancelled it
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)
        job.arrived.set()


class Batcher:
    """Owns the engine; serves :meth:`submit` from a single worker thread."""

    def __init__(self, engine: Engine, eos_id: int, max_batch: int, wait_s: float, max_queue: int) -> None:
        self.engine = engine
        self.eos_id = eos_id
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self.active = 0  # rows in the running batch, for /health and metrics

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker; requests still waiting get an error."""
        self._stopping.set()
        self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            job.settle(GenerationError("the server is shutting down"))

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    @property
    def full(self) -> bool:
        """No room in the queue: a request admitted now would only be refused after its retrieval."""
        return self._queue.full()

    def submit(self, prompt: list[int], params: SamplingParams, every_token: bool = True) -> Job:
        """Queue a request from the event loop; its tokens arrive in ``job.received`` as they are
        chosen (or, without ``every_token``, all at the end), ``job.arrived`` wakes a reader, and its
        result comes in ``job.future``."""
        loop = asyncio.get_running_loop()
        job = Job(prompt, params, loop.create_future(), loop, np.random.default_rng(params.seed),
                  every_token=every_token)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are already waiting") from None
        return job

    def _take(self, room: int, block: bool) -> list[Job]:
        """Waiting jobs that may join now; when idle, wait for one (and, with Optimum's graphs, for company)."""
        jobs: list[Job] = []
        if block:
            try:
                jobs.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                return jobs
            # The lean decoder takes a newcomer into the running batch's next step at no extra step, so
            # waiting for company at an idle batcher only delays the first; Optimum's first-step graph
            # cannot, and there the wait still saves a prefill.
            deadline = time.perf_counter() + (0.0 if self.engine.joins_a_step else self.wait_s)
            while len(jobs) < room and (left := deadline - time.perf_counter()) > 0:
                try:
                    jobs.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
        while len(jobs) < room:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [j for j in jobs if not j.cancelled]

    def _run(self) -> None:
        active: list[Job] = []
        state: DecoderState | None = None
        while not self._stopping.is_set():
            joiners = self._take(self.max_batch - len(active), block=not active)
            try:
                if joiners and (not active or not self.engine.joins_a_step):
                    # Newcomers to an idle batcher (or, with Optimum's first-step graph, to any batch) share
                    # one encoder run and first step; running rows wait this one out.
                    began = time.perf_counter()
                    logits, fresh = self.engine.prefill([j.prompt for j in joiners])
                    now = time.perf_counter()
                    for job in joiners:
                        job.joined, job.started = began, now
                    state = fresh if state is None else DecoderState.concat(state, fresh)
                    offset = len(active)
                    active += joiners
                    rows = range(offset, len(active))
                elif active and state is not None:
                    # Every running row feeds back its last token and gets the next one's logits. Newcomers
                    # are encoded and take their first step (from the start token) in this same step: a
                    # step costs about the same for a few more rows, so a join no longer costs a step.
                    last = [job.tokens[-1] for job in active]
                    began = time.perf_counter()
                    if joiners:
                        state = DecoderState.concat(state, self.engine.encode([j.prompt for j in joiners]))
                        last += [self.engine.start_id] * len(joiners)
                    logits, state = self.engine.step(state, np.array(last, dtype=np.int64))
                    now = time.perf_counter()
                    for job in joiners:
                        job.joined, job.started = began, now
                    active += joiners
                    rows = range(len(active))
                else:
                    continue
            except Exception as exc:  # a failed pass fails its batch, never the worker
                log.exception("model pass failed")
                for job in active + joiners:
                    job.settle(GenerationError(f"generation failed: {exc}"))
                active, state = [], None
                continue
            keep = self._advance(active, rows, logits)
            if len(keep) < len(active):
                active = [active[i] for i in keep]
                state = state.select(keep) if active else None
            self.active = len(active)

    def _advance(self, active: list[Job], rows: range, logits: np.ndarray) -> list[int]:
        """Choose each row's token, hand the step's tokens and outcomes over; return the rows that go on."""
        batch = len(active)
        deliveries: list[Delivery] = []
        for i, row in enumerate(rows):
            job = active[row]
            job.batch_size = max(job.batch_size, batch)
            try:
                token = choose_token(logits[i], job.params, job.rng)
            except Exception as exc:  # one row's bad numbers fail that row, never the worker
                log.exception("choosing a token failed")
                job.done = True
                deliveries.append((job, [], GenerationError(f"generation failed: {exc}")))
                continue
            job.tokens.append(token)
            reason = check_stop(token, len(job.tokens), job.params, self.eos_id)
            outcome = None if reason is None else self._finish(job, reason)
            if job.every_token or outcome is not None:
                deliveries.append((job, job.tokens[job.sent:], outcome))
                job.sent = len(job.tokens)
        _post(deliveries)
        # Rows leave when done or when their caller went away (the slot is freed for others).
        return [i for i, job in enumerate(active) if not job.done and not job.cancelled]

    def _finish(self, job: Job, reason: FinishReason) -> Result:
        job.done = True
        tokens = job.tokens[:-1] if reason == "eos" else list(job.tokens)
        now = time.perf_counter()
        return Result(tokens, reason, job.joined - job.submitted, now - job.started, job.batch_size,
                      job.started - job.joined)

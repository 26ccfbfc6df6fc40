"""The async engine: jobs submitted from asyncio, rendered on one worker thread per device.

All torch work runs on the worker threads; the event loop only receives events, through
`loop.call_soon_threadsafe`. A job that fails (bad input, out of memory, a bug) fails alone
and the worker takes the next one.

    >>> async with Engine.create(EngineSettings(preset="tiny")) as engine:
    ...     handle = engine.submit(GenerationRequest(image=photo, prompt="ink drawing"), owner="ann")
    ...     async for event in handle.events():
    ...         print(event)            # QueuePosition(1), Started(...), Progress(1, 4)...
    ...     result = await handle.result()
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import torch

from engine.errors import InputError, JobCancelled, JobFailed
from engine.queue import FairQueue, QueuedJob
from engine.render import Renderer, check_request
from engine.settings import EngineSettings
from engine.types import GenerationRequest, GenerationResult

__all__ = ["Engine", "Event", "JobHandle", "JobStatus", "Progress", "QueuePosition", "Started"]

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    #: waiting in the queue
    QUEUED = "queued"
    #: on a worker
    RUNNING = "running"
    #: finished with a result
    DONE = "done"
    #: finished with an error (bad input, out of memory, internal)
    FAILED = "failed"
    #: cancelled while queued or running
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class QueuePosition:
    """1 = the next job to start."""

    position: int


@dataclass(frozen=True)
class Started:
    model: str


@dataclass(frozen=True)
class Progress:
    """Denoising step `step` of `total` is done."""

    step: int
    total: int


Event = QueuePosition | Started | Progress
_END = object()


class JobHandle:
    """One submitted job: its events, its result, and a way to cancel it."""

    def __init__(self, job_id: str, request: GenerationRequest, engine: Engine, loop: asyncio.AbstractEventLoop):
        self.id = job_id
        self.request = request
        self.status = JobStatus.QUEUED
        self.position: int | None = None
        self.submitted = time.perf_counter()
        self._engine = engine
        self._loop = loop
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._future: asyncio.Future[GenerationResult] = loop.create_future()
        self._stop = threading.Event()  # read by the worker at each step

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.status.value}>"

    async def events(self) -> AsyncIterator[Event]:
        """Queue positions, the start and each step, until the job ends."""
        while True:
            event = await self._events.get()
            if event is _END:
                return
            yield event  # type: ignore[misc]

    async def result(self) -> GenerationResult:
        """The result; raises InputError, JobCancelled or JobFailed when there is none."""
        return await asyncio.shield(self._future)

    def done(self) -> bool:
        return self.status in TERMINAL

    def cancel(self) -> bool:
        """Cancel: at once when queued, at the next denoising step when running.

        :returns: False when the job had already ended
        """
        return self._engine._cancel(self)

    # --- called from any thread -----------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    def _finish(self, status: JobStatus, result: GenerationResult | None = None, error: Exception | None = None):
        self._loop.call_soon_threadsafe(self._settle, status, result, error)

    def _settle(self, status: JobStatus, result: GenerationResult | None, error: Exception | None) -> None:
        if self._future.done():
            return
        self.status = status
        if error is not None:
            self._future.set_exception(error)
            self._future.exception()  # retrieved here so an unawaited failure logs no warning
        else:
            self._future.set_result(result)  # type: ignore[arg-type]
        self._events.put_nowait(_END)


class Engine:
    """Submits jobs from asyncio to worker threads, one per renderer (one renderer per device)."""

    def __init__(self, renderers: Sequence[Renderer], *, max_skips: int = 3, max_hold: float = 1.0) -> None:
        if not renderers:
            raise ValueError("an engine needs at least one renderer")
        self.renderers = list(renderers)
        self._queue = FairQueue(max_skips=max_skips)
        self._handles: dict[str, JobHandle] = {}
        self._running: dict[str, JobHandle] = {}
        self._lock = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._go = threading.Event()  # cleared by hold(): workers wait at their next step
        self._go.set()
        self.max_hold = max_hold

    @classmethod
    def create(cls, settings: EngineSettings, **kwargs: object) -> Engine:
        return cls([Renderer(settings)], **kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> Engine:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._threads:
            return
        for index, renderer in enumerate(self.renderers):
            thread = threading.Thread(target=self._work, args=(renderer,), name=f"engine-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def close(self) -> None:
        """Stop the workers: queued jobs are cancelled, a running one stops at its next step."""
        with self._lock:
            self._closing = True
            waiting = [self._handles[i] for i in self._queue.plan()]
            for handle in waiting:
                self._queue.remove(handle.id)
                self._handles.pop(handle.id, None)
            for handle in self._running.values():
                handle._stop.set()
            self._lock.notify_all()
        self._go.set()
        for handle in waiting:
            handle._finish(JobStatus.CANCELLED, error=JobCancelled("the engine shut down before the job started"))
        await asyncio.gather(*(asyncio.to_thread(t.join) for t in self._threads))
        self._threads.clear()
        await asyncio.sleep(0)  # let the settle callbacks run

    def submit(self, request: GenerationRequest, *, owner: str | None = None, job_id: str | None = None) -> JobHandle:
        """Queue `request`; call from the event loop. Bad input raises InputError here, before queueing."""
        check_request(request)
        if self._closing:
            raise JobFailed("the engine is shutting down")
        self.start()
        handle = JobHandle(job_id or uuid.uuid4().hex[:12], request, self, asyncio.get_running_loop())
        model = self.renderers[0].model_key(request)
        with self._lock:
            if handle.id in self._handles and not self._handles[handle.id].done():
                raise ValueError(f"job id {handle.id!r} is already queued or running")
            self._handles[handle.id] = handle
            self._queue.push(QueuedJob(handle.id, owner=owner if owner is not None else request.owner, model=model))
            self._post_positions()
            self._lock.notify()
        return handle

    def hold(self) -> None:
        """Pause rendering at the next denoising step, and keep the next job from starting, until
        ``release()``; each pause lasts at most ``max_hold`` seconds. The bot holds the engine
        while interactions wait for their acknowledgement: a worker thread between kernel
        launches holds the GIL the event loop needs.

        >>> engine.hold(); await acknowledge_burst(); engine.release()
        """
        self._go.clear()

    def release(self) -> None:
        """Let held workers go on."""
        self._go.set()

    @property
    def held(self) -> bool:
        """True between ``hold()`` and ``release()``."""
        return not self._go.is_set()

    def queued(self) -> list[str]:
        """Ids of waiting jobs in their planned order."""
        with self._lock:
            return self._queue.plan(self._loaded())

    def _loaded(self) -> frozenset[str]:
        return frozenset().union(*(r.registry.loaded() for r in self.renderers))

    def _post_positions(self) -> None:
        # Under self._lock. Positions follow the planned order, so they account for affinity too.
        for index, job_id in enumerate(self._queue.plan(self._loaded())):
            handle = self._handles[job_id]
            if handle.position != index + 1:
                handle.position = index + 1
                handle._emit(QueuePosition(index + 1))

    def _cancel(self, handle: JobHandle) -> bool:
        with self._lock:
            if self._queue.remove(handle.id):
                self._handles.pop(handle.id, None)
                self._post_positions()
                queued = True
            elif handle.id in self._running:
                handle._stop.set()
                return True
            else:
                return False
        if queued:
            handle._finish(JobStatus.CANCELLED, error=JobCancelled("cancelled before it started"))
        return True

    # --- the worker thread ----------------------------------------------------------------------

    def _work(self, renderer: Renderer) -> None:
        if renderer.registry.device.type == "cpu" and (os.cpu_count() or 1) > 1:
            # Rendering on the CPU: leave a core to the event loop, or acknowledgements wait on torch.
            torch.set_num_threads((os.cpu_count() or 2) - 1)
        while True:
            self._go.wait(self.max_hold)  # held: no new job starts either
            with self._lock:
                while not len(self._queue) and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                queued = self._queue.pop(renderer.registry.loaded())
                assert queued is not None
                handle = self._handles[queued.id]
                handle.position = None
                self._running[handle.id] = handle
                self._post_positions()
            handle._loop.call_soon_threadsafe(setattr, handle, "status", JobStatus.RUNNING)
            handle._emit(Started(queued.model))
            try:
                self._run(renderer, handle)
            finally:
                with self._lock:
                    self._running.pop(handle.id, None)
                    self._handles.pop(handle.id, None)

    def _run(self, renderer: Renderer, handle: JobHandle) -> None:
        began = time.perf_counter()

        def on_step(step: int, total: int) -> None:
            if not self._go.is_set():
                self._go.wait(self.max_hold)
            if handle._stop.is_set():
                raise JobCancelled("cancelled while rendering")
            handle._emit(Progress(step, total))

        try:
            if handle._stop.is_set():
                raise JobCancelled("cancelled before it started")
            result = renderer.render(handle.request, on_step=on_step)
        except JobCancelled as exc:
            handle._finish(JobStatus.CANCELLED, error=exc)
        except InputError as exc:
            handle._finish(JobStatus.FAILED, error=exc)
        except torch.OutOfMemoryError:
            log.error(
                "job %s ran out of GPU memory (mode %s, image %sx%s)",
                handle.id,
                handle.request.mode.value,
                *handle.request.image.size,
            )
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            handle._finish(
                JobStatus.FAILED,
                error=JobFailed(
                    "the GPU ran out of memory on this job: try a smaller image, or again when fewer jobs are running"
                ),
            )
        except Exception:
            log.exception(
                "job %s failed (mode %s, strength %s, image %sx%s)",
                handle.id,
                handle.request.mode.value,
                handle.request.strength,
                *handle.request.image.size,
            )
            handle._finish(
                JobStatus.FAILED,
                error=JobFailed(f"job {handle.id} failed with an internal error; the details are in the engine's log"),
            )
        else:
            queued_for = began - handle.submitted
            result = dataclasses.replace(result, timings={"queued": queued_for, **result.timings})
            handle._finish(JobStatus.DONE, result=result)

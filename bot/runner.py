"""The job runner: a stored job goes to the engine, its events to the status message, its result to
the store and then to delivery. Data flows one way: job row -> engine -> result -> delivery.

Everything a job needs is in its row and the image store, so after a restart `resume()` runs the
queued and running jobs again and delivers the finished but undelivered ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot import store
from bot.delivery import Delivery, progress_bar
from bot.jobs import Job, JobState
from engine.errors import InputError, JobCancelled, JobFailed
from engine.images import load_image
from engine.types import GenerationRequest, Mode, Outpaint
from engine.worker import Engine, JobHandle, Progress, QueuePosition, Started

if TYPE_CHECKING:
    from bot.store import Database

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

#: Status edits no more often than this (Discord rate-limits message edits).
STATUS_INTERVAL = 1.5
#: Queue positions change on every job that starts: with a long queue, refreshing each waiting job's
#: status that often would flood Discord with edits, so waiting jobs refresh less often.
QUEUED_STATUS_INTERVAL = 6.0
#: Seconds per job assumed for an ETA before any job of that mode has finished.
DEFAULT_JOB_SECONDS = 20.0
#: Waits between delivery attempts during a Discord outage; after the last, the next restart retries.
DELIVERY_RETRIES = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0)


class JobRunner:
    """Runs stored jobs on the engine and hands results to delivery."""

    def __init__(
        self,
        engine: Engine,
        db: Database,
        images_dir: Path,
        delivery: Delivery,
        *,
        status_interval: float = STATUS_INTERVAL,
        delivery_retries: tuple[float, ...] = DELIVERY_RETRIES,
    ) -> None:
        self.engine = engine
        self.db = db
        self.images_dir = images_dir
        self.delivery = delivery
        self.status_interval = status_interval
        self.delivery_retries = delivery_retries
        self.handles: dict[str, JobHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- starting --------------------------------------------------------------------------------

    async def start(self, job: Job) -> bool:
        """Queue a stored job on the engine and follow it in a background task.

        A job the engine refuses (its images gone from disk, a request the engine finds bad, an
        engine shutting down) is marked FAILED and its owner told, rather than left QUEUED.

        :returns: False when the job could not start
        """
        try:
            request = await asyncio.to_thread(self._request, job)
            handle = self.engine.submit(request, owner=str(job.owner_id), job_id=job.id)
        except (InputError, JobFailed) as exc:
            log.warning("job %s could not start: %s", job.id, exc)
            failed = await asyncio.to_thread(store.mark_failed, self.db, job.id, str(exc))
            await self._finish(failed)
            return False
        self.handles[job.id] = handle
        task = asyncio.create_task(self._follow(job, handle), name=f"job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def resume(self) -> tuple[int, int]:
        """After a restart: run queued and running jobs again, deliver what finished undelivered."""
        pending = await asyncio.to_thread(store.jobs_to_resume, self.db)
        for job in pending:
            if job.state is JobState.RUNNING:
                job = await asyncio.to_thread(store.requeue, self.db, job.id)
            await self.start(job)
        undelivered = await asyncio.to_thread(store.undelivered, self.db)
        for job in undelivered:
            await self._finish(job)
        log.info("resumed %d jobs and %d deliveries", len(pending), len(undelivered))
        swept = await asyncio.to_thread(store.sweep_images, self.db, self.images_dir)
        if swept:
            log.info("removed %d stored images no job refers to", swept)
        return len(pending), len(undelivered)

    def cancel(self, job_id: str) -> bool:
        handle = self.handles.get(job_id)
        return handle.cancel() if handle is not None else False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- one job -----------------------------------------------------------------------------------

    def _request(self, job: Job) -> GenerationRequest:
        # In a thread: reads and decodes images from disk.
        def image(digest: str | None, label: str):
            if digest is None:
                return None
            try:
                return load_image(store.read_image(self.images_dir, digest), label=label)
            except store.NotFoundError:
                raise InputError(f"the {label} of this job is no longer stored") from None

        return GenerationRequest(
            image=image(job.source_hash, "image"),
            prompt=job.prompt,
            mode=Mode.parse(job.mode),
            strength=job.strength,
            seed=job.seed,
            steps=job.steps,
            fast=job.fast,
            mask=image(job.mask_hash, "mask"),
            outpaint=Outpaint.parse(job.outpaint) if job.outpaint else None,
            style=image(job.style_hash, "style image"),
            owner=str(job.owner_id),
        )

    async def _follow(self, job: Job, handle: JobHandle) -> None:
        try:
            await self._watch(job, handle)
            await self._record(job, handle)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: following it failed (mode %s, channel %s)", job.id, job.mode, job.channel_id)
        finally:
            self.handles.pop(job.id, None)

    async def _watch(self, job: Job, handle: JobHandle) -> None:
        last_edit = -QUEUED_STATUS_INTERVAL
        async for event in handle.events():
            now = time.monotonic()
            if isinstance(event, Started):
                try:
                    await asyncio.to_thread(store.mark_running, self.db, job.id)
                except store.StateError:  # cancelled while it waited; the engine stops it at the first step
                    log.info("job %s started after it was cancelled", job.id)
                await self.delivery.status(job, "Rendering…")
                last_edit = now
            elif isinstance(event, QueuePosition) and (
                now - last_edit >= max(self.status_interval, QUEUED_STATUS_INTERVAL) or event.position == 1
            ):
                eta = await self._eta(job, event.position)
                await self.delivery.status(job, f"Queued: position {event.position}, about {eta} to go.")
                last_edit = now
            elif isinstance(event, Progress) and (now - last_edit >= self.status_interval or event.step == event.total):
                await self.delivery.status(job, f"Rendering `{progress_bar(event.step, event.total)}`")
                last_edit = now

    async def _eta(self, job: Job, position: int) -> str:
        mean = await asyncio.to_thread(store.mean_render_seconds, self.db, job.mode)
        seconds = (mean or DEFAULT_JOB_SECONDS) * position
        return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"

    async def _record(self, job: Job, handle: JobHandle) -> None:
        try:
            result = await handle.result()
        except JobCancelled:
            finished = await asyncio.to_thread(store.mark_cancelled, self.db, job.id)
            if finished is None:
                return
        except (InputError, JobFailed) as exc:
            finished = await asyncio.to_thread(store.mark_failed, self.db, job.id, str(exc))
        else:
            png = await asyncio.to_thread(result.png_bytes)
            digest = await asyncio.to_thread(store.put_image, self.images_dir, png)
            try:
                finished = await asyncio.to_thread(
                    store.mark_done,
                    self.db,
                    job.id,
                    result_hash=digest,
                    result_seed=result.seed,
                    steps=result.steps,
                    timings=result.timings,
                )
            except store.StateError:  # cancelled from elsewhere as it finished: its notice was already sent
                return
        await self._finish(finished)

    async def _finish(self, job: Job) -> None:
        """Deliver a DONE job, or notify a failed or cancelled one, retrying through an outage.

        Each try is safe to repeat (see `bot.delivery`); a job still undelivered after the last try
        stays DONE in the store and is delivered by `resume` at the next start.
        """
        for wait in (*self.delivery_retries, None):
            try:
                if job.state is JobState.DONE:
                    await self.delivery.deliver(job)
                else:
                    await self.delivery.notify(job)
                return
            except Exception:
                log.exception(
                    "job %s: delivery failed; %s",
                    job.id,
                    f"trying again in {wait:g} s" if wait is not None else "retrying at the next start",
                )
                if wait is None:
                    return
                await asyncio.sleep(wait)

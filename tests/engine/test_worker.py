"""The async engine: progress, queue positions, cancel, fairness, failures that stay alone, and an
event loop that keeps ticking while torch works on the worker thread."""

import asyncio
import time

import pytest
import torch

from engine.errors import InputError, JobCancelled, JobFailed
from engine.render import Renderer
from engine.types import GenerationRequest, Mode
from engine.worker import Engine, JobStatus, Progress, QueuePosition, Started


def req(photo, **kwargs):
    kwargs.setdefault("prompt", "a cup of tea")
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("mode", Mode.CANNY)
    return GenerationRequest(image=photo, **kwargs)


def slow(photo, **kwargs):
    """A job of 100 steps: long enough to act on while it runs."""
    return req(photo, strength=1.0, steps=100, **kwargs)


async def collect(handle):
    return [event async for event in handle.events()]


def test_progress_events_then_the_result(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            handle = engine.submit(req(photo, strength=0.5, steps=8), owner="ann")
            events = await collect(handle)
            result = await handle.result()
            return handle, events, result

    handle, events, result = asyncio.run(main())
    assert events[0] == QueuePosition(1)
    assert isinstance(events[1], Started) and events[1].model == "canny"
    assert [e for e in events if isinstance(e, Progress)] == [Progress(k, 4) for k in range(1, 5)]
    assert handle.status is JobStatus.DONE
    assert result.steps == 4 and result.timings["queued"] >= 0 and result.timings["total"] > 0


def test_cancel_a_running_job_stops_at_the_next_step_and_the_worker_goes_on(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            handle = engine.submit(slow(photo), owner="ann")
            steps = []
            async for event in handle.events():
                if isinstance(event, Progress):
                    steps.append(event.step)
                    if event.step == 3:
                        assert handle.cancel() is True
            with pytest.raises(JobCancelled):
                await handle.result()
            after = engine.submit(req(photo, strength=0.25, steps=8), owner="ann")
            return handle, steps, await after.result()

    handle, steps, after = asyncio.run(main())
    assert handle.status is JobStatus.CANCELLED
    assert 3 <= len(steps) <= 5  # stopped within a step or two, far from 100
    assert after.steps == 2
    assert handle.cancel() is False  # already over


def test_cancel_a_queued_job(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            first = engine.submit(slow(photo), owner="ann")
            second = engine.submit(req(photo), owner="bob")
            third = engine.submit(req(photo), owner="cy")
            await asyncio.sleep(0)
            assert second.cancel() is True
            with pytest.raises(JobCancelled, match="before it started"):
                await second.result()
            second_events = await collect(second)
            first.cancel()
            await asyncio.gather(first.result(), return_exceptions=True)
            await third.result()
            third_events = await collect(third)
            return second, second_events, third_events

    second, second_events, third_events = asyncio.run(main())
    assert second.status is JobStatus.CANCELLED
    assert not any(isinstance(e, Started) for e in second_events)
    positions = [e.position for e in third_events if isinstance(e, QueuePosition)]
    # It moved up as the jobs ahead started or were cancelled, and was next before it started.
    assert positions[-1] == 1 and positions == sorted(positions, reverse=True) and len(positions) >= 2


def test_fair_across_owners(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            starts = []
            handles = [engine.submit(req(photo, strength=0.25, steps=8, seed=i), owner="ann") for i in range(4)]
            handles.append(engine.submit(req(photo, strength=0.25, steps=8), owner="bob"))

            async def watch(name, handle):
                async for event in handle.events():
                    if isinstance(event, Started):
                        starts.append(name)

            names = ["ann0", "ann1", "ann2", "ann3", "bob"]
            await asyncio.gather(*(watch(name, h) for name, h in zip(names, handles, strict=True)))
            return starts, handles

    # The first job is already running when bob arrives: bob goes second, not last.
    starts, handles = asyncio.run(main())
    assert starts == ["ann0", "bob", "ann1", "ann2", "ann3"]
    assert all(h.status is JobStatus.DONE for h in handles)


def test_hold_pauses_rendering_at_the_next_step_until_release(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            handle = engine.submit(slow(photo), owner="ann")
            steps = []  # (step, when it reached the loop), kept by a task of its own
            second = asyncio.Event()
            held_at = []

            async def watch():
                async for event in handle.events():
                    if isinstance(event, Progress):
                        steps.append((event.step, time.perf_counter()))
                        if event.step == 2:
                            engine.hold()
                            held_at.append(time.perf_counter())
                            second.set()

            watcher = asyncio.create_task(watch())
            await second.wait()
            await asyncio.sleep(0.4)
            released_at = time.perf_counter()
            engine.release()
            await handle.result()
            await watcher
            return steps, held_at[0], released_at

    steps, held_at, released_at = asyncio.run(main())
    # Steps done before the hold took effect reach the loop within moments; none may come later.
    assert [s for s, t in steps if held_at + 0.1 < t < released_at] == []
    assert [s for s, _ in steps] == list(range(1, 101))  # then it went on from where it stopped


def test_a_hold_nobody_releases_only_slows_the_job_down(renderer, photo):
    async def main():
        async with Engine([renderer], max_hold=0.02) as engine:
            engine.hold()
            began = time.perf_counter()
            result = await engine.submit(req(photo, strength=1.0, steps=6), owner="ann").result()
            return result, time.perf_counter() - began

    result, took = asyncio.run(main())
    assert result.steps == 6 and took >= 6 * 0.02


def test_close_ends_a_hold(renderer, photo):
    async def main():
        engine = Engine([renderer], max_hold=30)
        handle = engine.submit(slow(photo), owner="ann")
        async for event in handle.events():
            if isinstance(event, Progress):
                engine.hold()
                break
        began = time.perf_counter()
        await engine.close()
        with pytest.raises(JobCancelled):
            await handle.result()
        return time.perf_counter() - began

    assert asyncio.run(main()) < 5  # not the 30 s hold


def test_event_loop_keeps_ticking_while_a_job_renders(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            handle = engine.submit(req(photo, strength=1.0, steps=60), owner="ann")
            gaps, last = [], time.perf_counter()
            while not handle.done():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
            await handle.result()
            return gaps

    gaps = asyncio.run(main())
    assert len(gaps) > 20
    assert max(gaps) < 0.25, max(gaps)


def test_bad_input_is_refused_at_submit_and_nothing_is_queued(renderer, photo):
    async def main():
        async with Engine([renderer]) as engine:
            with pytest.raises(InputError, match="strength must be between 0 and 1"):
                engine.submit(req(photo, strength=2.0))
            return engine.queued()

    assert asyncio.run(main()) == []


def test_a_failing_job_fails_alone(tiny_settings, photo, monkeypatch):
    renderer = Renderer(tiny_settings)
    real = renderer.registry.source.transformer
    failures = iter([RuntimeError("disk read error"), torch.OutOfMemoryError("CUDA out of memory")])

    def flaky(key):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(key)

    monkeypatch.setattr(renderer.registry.source, "transformer", flaky)

    async def main():
        async with Engine([renderer]) as engine:
            broken = engine.submit(req(photo), owner="ann")
            oom = engine.submit(req(photo), owner="bob")
            blank = engine.submit(req(photo, mode=Mode.FILL, mask=photo.convert("L").point(lambda _: 0)), owner="cy")
            fine = engine.submit(req(photo), owner="dee")
            outcomes = await asyncio.gather(
                broken.result(), oom.result(), blank.result(), fine.result(), return_exceptions=True
            )
            return outcomes, [h.status for h in (broken, oom, blank, fine)]

    outcomes, statuses = asyncio.run(main())
    assert isinstance(outcomes[0], JobFailed) and "internal error" in str(outcomes[0])
    assert isinstance(outcomes[1], JobFailed) and "ran out of memory" in str(outcomes[1])
    assert isinstance(outcomes[2], InputError) and "mask is all black" in str(outcomes[2])
    assert outcomes[3].steps == 4
    assert statuses == [JobStatus.FAILED, JobStatus.FAILED, JobStatus.FAILED, JobStatus.DONE]


def test_close_cancels_what_is_waiting(renderer, photo):
    async def main():
        engine = Engine([renderer])
        running = engine.submit(slow(photo), owner="ann")
        waiting = engine.submit(req(photo), owner="bob")
        async for event in running.events():
            if isinstance(event, Progress):
                break
        await engine.close()
        return await asyncio.gather(running.result(), waiting.result(), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, JobCancelled) for o in outcomes)

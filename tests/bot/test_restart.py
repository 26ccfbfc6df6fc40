"""Nothing lost, nothing twice: jobs survive restarts, in-process and with a real `kill -9`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from bot import store
from bot.jobs import Job, JobState
from tests.bot.conftest import COFFEE, delivered, run, running_bot
from tests.bot.process import start_bot_process
from tests.fakediscord import FakeDiscord

#: a render of a few seconds: time to kill the bot mid-job
SLOW = {"RESTYLE_PIXEL_BUDGET": str(256 * 256)}


def with_attachments(fake: FakeDiscord) -> list:
    return [m for m in fake.messages() if m.attachments]


def seed_jobs(data_dir: Path, fake: FakeDiscord, result_png: bytes) -> dict[str, str]:
    """A database as a crash leaves it: one job of each state that matters."""
    db = store.open_db(data_dir / "restyle.db")
    images = data_dir / "images"
    source = store.put_image(images, COFFEE, ".jpg")
    result = store.put_image(images, result_png)

    def job(**fields) -> Job:
        return store.create_job(
            db,
            Job(
                owner_id=fake.alice.id,
                guild_id=fake.guild.id,
                channel_id=fake.channel.id,
                source_hash=source,
                prompt="a cup of tea",
                **fields,
            ),
        )

    queued = job()
    running = job(strength=0.7)
    store.mark_running(db, running.id)
    done = job(strength=0.3)
    store.mark_running(db, done.id)
    store.mark_done(db, done.id, result_hash=result, result_seed=5, steps=3, timings={"total": 1.0})
    finished = job(strength=0.9)
    store.mark_running(db, finished.id)
    store.mark_done(db, finished.id, result_hash=result, result_seed=6, steps=8, timings={"total": 1.0})
    store.claim_delivery(db, finished.id, 12345)
    return {"queued": queued.id, "running": running.id, "done": done.id, "delivered": finished.id}


def test_restart_resumes_queued_and_running_jobs_and_delivers_each_result_once(tmp_path, renderer, photo):
    from engine.types import GenerationRequest

    png = renderer.render(GenerationRequest(image=photo, prompt="x", seed=1, steps=1)).png_bytes()

    async def main():
        async with FakeDiscord() as fake:
            ids = seed_jobs(tmp_path, fake, png)
            async with running_bot(fake, tmp_path) as bot:
                await fake.wait_for(lambda: len(with_attachments(fake)) == 3, timeout=30)
                jobs = {name: store.get_job(bot.db, job_id) for name, job_id in ids.items()}
                await fake.wait_for(lambda: all(store.get_job(bot.db, i).state is JobState.DELIVERED for i in ids.values()))
            first_run = len(with_attachments(fake))
            async with running_bot(fake, tmp_path):  # a second start finds nothing to do
                await asyncio.sleep(0.5)
            return jobs, first_run, len(with_attachments(fake)), with_attachments(fake)

    jobs, first_run, second_run, messages = run(main())
    assert first_run == second_run == 3
    assert jobs["running"].attempts == 2  # ran again after the "crash"
    assert jobs["delivered"].result_message_id == 12345  # untouched
    mentions = [m for m in messages if f"<@{jobs['done'].owner_id}>" in m.content]
    assert len(mentions) == 3  # no token: channel messages that mention the owner


def test_kill_9_mid_job_then_restart_delivers_exactly_once(tmp_path):
    async def main():
        async with FakeDiscord() as fake:
            first = await start_bot_process(fake, tmp_path, **SLOW)
            await fake.wait_for(lambda: fake.commands(fake.guild), timeout=30)
            image = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
            interaction = await fake.slash(fake.alice, "restyle", {"image": image, "prompt": "a cup of tea"})
            await interaction.wait_callback(timeout=10)
            await fake.wait_for(lambda: interaction.original and "Rendering" in interaction.original.content, timeout=60)
            first.send_signal(signal.SIGKILL)
            await first.wait()
            db = store.open_db(tmp_path / "restyle.db")
            before = store.recent_jobs(db, limit=1)[0]

            second = await start_bot_process(fake, tmp_path, **SLOW)
            result = await fake.wait_for(lambda: delivered(interaction, db), timeout=90)
            after = store.get_job(db, before.id)
            second.send_signal(signal.SIGKILL)
            await second.wait()

            third = await start_bot_process(fake, tmp_path, **SLOW)  # nothing left to do
            await asyncio.sleep(2)
            third.send_signal(signal.SIGKILL)
            await third.wait()
            return before, after, result, with_attachments(fake)

    before, after, result, messages = run(main(), timeout=240)
    assert before.state is JobState.RUNNING
    assert after.state is JobState.DELIVERED and after.attempts == 2
    assert len(messages) == 1 and messages[0].id == result.id


def test_a_job_whose_source_is_gone_fails_with_a_notice_instead_of_waiting(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            missing = "0" * 64  # a source that is not in the image store
            job = store.create_job(
                bot.db, Job(owner_id=fake.alice.id, guild_id=fake.guild.id, channel_id=fake.channel.id, source_hash=missing)
            )
            started = await bot.runner.start(job)
            notice = await fake.wait_for(lambda: next((m for m in fake.messages() if "did not work" in m.content), None))
            return started, store.get_job(bot.db, job.id), notice

    started, job, notice = run(main())
    assert started is False
    assert job.state is JobState.FAILED and job.notified_at is not None
    assert "no longer stored" in job.error and f"<@{job.owner_id}>" in notice.content

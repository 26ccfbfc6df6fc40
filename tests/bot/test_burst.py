"""A burst of commands: every one acknowledged before any download starts (one slow acknowledgement
holds the others' downloads back), the engine held while acknowledgements are due, and then every
job delivered once."""

import asyncio

from bot import store
from bot.jobs import JobState
from tests.bot.conftest import COFFEE, delivered, restyled, run, running_bot
from tests.fakediscord import CallbackType, FakeDiscord, FakeUser

BURST = 30
GUILDS = 1 << 0  # the gateway intent for guilds and their channels


def test_a_burst_is_acknowledged_before_any_download_and_then_delivered_once(tmp_path):
    people = [FakeUser(f"user{i}") for i in range(5)]

    async def main():
        async with FakeDiscord(users=people) as fake, running_bot(fake, tmp_path) as bot:
            store.update_settings(bot.db, fake.guild.id, per_user_limit=BURST)
            bot.forget_guild_settings(fake.guild.id)
            images = [fake.add_attachment(COFFEE, f"c{i}.jpg", "image/jpeg") for i in range(BURST)]
            held = []
            # One acknowledgement is slow to arrive: the others' downloads wait for it too.
            fake.slow_next("POST", "/interactions/*/callback", 0.3)

            async def watch_engine():
                while True:
                    held.append(bot.engine.held)
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch_engine())
            burst = await asyncio.gather(
                *(
                    fake.slash(people[i % len(people)], "restyle", {"image": images[i], "prompt": "a cup of tea"})
                    for i in range(BURST)
                )
            )
            await fake.wait_for(lambda: all(i.callback for i in burst), timeout=30)
            await fake.wait_for(lambda: not bot.engine.held, timeout=5)
            watcher.cancel()
            await fake.wait_for(lambda: all(delivered(i, bot.db) for i in burst), timeout=120, interval=0.05)
            downloads = [r for r in fake.requests_to("GET", "/attachments/*") if r.path.endswith(".jpg")]
            return burst, downloads, held, store.recent_jobs(bot.db, limit=BURST + 1), fake.messages()

    burst, downloads, held, jobs, messages = run(main(), timeout=240)
    assert all(i.callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE for i in burst)
    last_ack = max(i.callback.time for i in burst)
    assert len(downloads) == BURST and min(d.time for d in downloads) > last_ack
    assert True in held  # held while acknowledgements were due (and released after: waited for above)
    assert len(jobs) == BURST and all(j.state is JobState.DELIVERED for j in jobs)
    assert len([m for m in messages if m.attachments]) == BURST  # one result each


def test_a_command_answered_without_a_job_does_not_leave_the_engine_held(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await fake.slash(fake.alice, "help", {})
            await interaction.wait_callback()
            # /help never reaches a job's intake: the answered interaction is forgotten all the same.
            await fake.wait_for(lambda: not bot.engine.held and not bot.acks.waiting(), timeout=1)
            return interaction

    interaction = run(main())
    assert interaction.callback.type == CallbackType.CHANNEL_MESSAGE


def test_the_bot_asks_the_gateway_for_guilds_only_and_still_does_everything(tmp_path):
    # Message, typing and reaction events would arrive for every message in every channel, each
    # parsed on the event loop that owes interactions their acknowledgements.
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            result, job = await restyled(fake, bot)
            return fake.gateway.intents, result, job

    intents, result, job = run(main())
    assert intents == GUILDS
    assert result.attachments and job.state is JobState.DELIVERED

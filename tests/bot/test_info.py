"""/queue, /history and /help end to end: the real bot and tiny engine against the fake Discord."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

from bot import store
from bot.jobs import Job, JobState
from cogs.info import LINEAGE_LIMIT, lineage_lines
from tests.bot.conftest import COFFEE, delivered, gate_renders, run, running_bot
from tests.fakediscord import EPHEMERAL, CallbackType, FakeDiscord

SOURCE = hashlib.sha256(b"source").hexdigest()


async def restyle(fake: FakeDiscord, user=None, **options):
    image = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
    interaction = await fake.slash(user or fake.alice, "restyle", {"image": image, "prompt": "a cup of tea", **options})
    await interaction.wait_callback()
    return interaction


async def slash(fake: FakeDiscord, user, name: str, **options):
    """Run a command and return its callback, which must be a private message."""
    interaction = await fake.slash(user, name, options)
    callback = await interaction.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.data["flags"] & EPHEMERAL, callback
    assert interaction.ack_latency < 3
    return callback


def description(callback) -> str:
    return callback.data["embeds"][0]["description"]


def finished_job(db, fake: FakeDiscord, *, total: float = 12.0, message_id: int = 5555, **changes) -> Job:
    """A job stored as rendered in `total` seconds and delivered as `message_id`, without rendering it."""
    values = {"owner_id": fake.alice.id, "guild_id": fake.guild.id, "channel_id": fake.channel.id, "source_hash": SOURCE}
    job = store.create_job(db, Job(**{**values, **changes}))
    store.mark_running(db, job.id)
    store.mark_done(db, job.id, result_hash=SOURCE, result_seed=1, steps=4, timings={"total": total})
    store.claim_delivery(db, job.id, message_id)
    return store.get_job(db, job.id)


def test_queue_lists_your_waiting_jobs_with_their_place_and_eta(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            empty = await slash(fake, fake.alice, "queue")
            finished_job(bot.db, fake, total=12.0)  # redux renders take 12 s here; canny has no history yet
            gate = gate_renders(bot)
            bobs = await restyle(fake, user=fake.bob)
            bobs_job = await fake.wait_for(lambda: store.recent_jobs(bot.db, owner_id=fake.bob.id, limit=1))
            await fake.wait_for(lambda: store.get_job(bot.db, bobs_job[0].id).state is JobState.RUNNING)
            waiting = [await restyle(fake)]
            await fake.wait_for(lambda: store.active_count(bot.db, fake.alice.id) == 1)  # stored first, queued first
            waiting.append(await restyle(fake, mode="canny"))
            await fake.wait_for(lambda: store.active_count(bot.db, fake.alice.id) == 2)
            alices_queue = await slash(fake, fake.alice, "queue")
            bobs_queue = await slash(fake, fake.bob, "queue")
            jobs = store.queued_jobs(bot.db, fake.guild.id)
            gate.set()
            for interaction in [bobs, *waiting]:
                await fake.wait_for(lambda i=interaction: delivered(i, bot.db), timeout=30)
            after = await slash(fake, fake.alice, "queue")
            return empty, alices_queue, bobs_queue, after, jobs

    empty, alices_queue, bobs_queue, after, jobs = run(main())
    assert empty.data["content"] == "You have no jobs waiting." and after.data["content"] == "You have no jobs waiting."
    bob, redux, canny = jobs
    lines = description(alices_queue).splitlines()
    assert lines == [
        f"`{redux.id}` · redux · 0.5 · #2 in the queue · done in about 24 s",  # 2 x the 12 s redux mean
        f"`{canny.id}` · canny · 0.5 · #3 in the queue · done in about 60 s",  # 3 x the 20 s default
    ]
    assert alices_queue.data["embeds"][0]["footer"]["text"] == "3 jobs in the queue here"
    assert description(bobs_queue) == f"`{bob.id}` · redux · 0.5 · rendering now · done in about 12 s"


def test_history_links_your_results_and_shows_how_a_job_was_made(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            empty = await slash(fake, fake.alice, "history")
            first = await restyle(fake, seed=1234)
            message = await fake.wait_for(lambda: delivered(first, bot.db), timeout=30)
            parent = store.recent_jobs(bot.db, limit=1)[0]
            click = await fake.click(fake.bob, message, f"job:{parent.id}:s30")
            await click.wait_callback()
            child = await fake.wait_for(
                lambda: next((j for j in store.children(bot.db, parent.id) if j.state is JobState.DELIVERED), None),
                timeout=30,
            )
            alices = await slash(fake, fake.alice, "history")
            lineage = await slash(fake, fake.bob, "history", job=child.id)
            unknown = await slash(fake, fake.alice, "history", job="nosuchjob")
            return fake, empty, store.get_job(bot.db, parent.id), child, alices, lineage, unknown

    fake, empty, parent, child, alices, lineage, unknown = run(main())
    assert empty.data["content"] == "You have no jobs here yet: start one with `/restyle`."
    parent_url = f"https://discord.com/channels/{fake.guild.id}/{fake.channel.id}/{parent.result_message_id}"
    child_url = f"https://discord.com/channels/{fake.guild.id}/{fake.channel.id}/{child.result_message_id}"
    # alice sees her own job only (bob made the variation), with mode, strength, state and a link
    [line] = description(alices).splitlines()
    assert line.startswith(f"`{parent.id}` · <t:{int(parent.created_at)}:R> · redux · 0.5 · delivered · ")
    assert f"[result]({parent_url})" in line and "“a cup of tea”" in line
    # the lineage runs root first, with who made each pass
    assert description(lineage).splitlines() == [
        f"1. `{parent.id}` · restyle · redux · strength 0.5 · by <@{fake.alice.id}> · [result]({parent_url})",
        f"2. `{child.id}` · variation · redux · strength 0.3 · by <@{fake.bob.id}> · [result]({child_url})",
    ]
    assert lineage.data["embeds"][0]["footer"]["text"] == f"2 passes, from job {parent.id}"
    assert unknown.data["content"] == "There is no job `nosuchjob` here. Job ids are in the footer of each result."


def test_history_keeps_to_your_ten_latest_jobs_in_this_server(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            mine = [finished_job(bot.db, fake, prompt=f"take {i}", created_at=1000.0 + i) for i in range(12)]
            elsewhere = finished_job(bot.db, fake, owner_id=fake.bob.id, guild_id=999, created_at=2000.0)
            listing = await slash(fake, fake.alice, "history")
            hidden = await slash(fake, fake.alice, "history", job=elsewhere.id)
            # Discord's client asks for autocomplete as the user types (the fake does not): call it as discord.py would
            typing = SimpleNamespace(user=SimpleNamespace(id=fake.alice.id), guild_id=fake.guild.id)
            choices = await bot.get_cog("Info").history_job_ids(typing, "TAKE 1")
            schema = next(c for c in fake.commands(fake.guild) if c["name"] == "history")
            return mine, listing, hidden, choices, schema

    mine, listing, hidden, choices, schema = run(main())
    lines = description(listing).splitlines()
    assert [line.split(" · ")[0] for line in lines] == [f"`{job.id}`" for job in reversed(mine[2:])]  # newest first
    assert all(" · [result](https://discord.com/channels/" in line for line in lines)
    assert hidden.data["content"].startswith("There is no job")  # another server's job, and not alice's
    assert [c.value for c in choices] == [mine[11].id, mine[10].id, mine[1].id]  # "take 11", "take 10", "take 1"
    assert choices[0].name == f"{mine[11].id} · redux 0.5 · take 11"
    assert schema["options"][0]["autocomplete"] is True


def test_help_explains_every_command_the_modes_and_the_buttons(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path):
            return await slash(fake, fake.bob, "help"), fake.commands(fake.guild)

    callback, synced = run(main())
    embed = callback.data["embeds"][0]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    for command in synced:  # nothing registered is missing, whoever added it
        assert (f"`/{command['name']}`" if command.get("type", 1) == 1 else command["name"]) in fields["Commands"]
    assert "`/settings`: Show or change Restyle's settings for this server (needs Manage Server)" in fields["Commands"]
    assert all(f"**{mode}**" in fields["Modes"] for mode in ("redux", "canny", "depth", "kontext"))
    assert "how much of the source survives" in fields["Strength"]
    assert all(button in fields["Buttons under a result"] for button in ("0.3 / 0.5", "Re-roll", "Delete", "Cancel"))
    assert fields["Tips"]
    assert fields["In this server"] == "Defaults: redux, strength 0.5. Up to 3 jobs each at once. Works in every channel."
    # Discord rejects an embed with a field over 1,024 characters or a total over 6,000
    assert all(len(value) <= 1024 for value in fields.values())
    assert sum(len(text) for text in [embed["title"], embed["description"], *fields, *fields.values()]) <= 6000


def test_a_long_lineage_keeps_its_root_and_latest_passes():
    chain = [Job(owner_id=1, channel_id=2, source_hash=SOURCE, kind="reroll") for _ in range(LINEAGE_LIMIT + 5)]
    lines = lineage_lines(chain)
    assert len(lines) == LINEAGE_LIMIT + 1 and lines[1] == "… 5 more passes …"
    assert lines[0].startswith(f"1. `{chain[0].id}` · reroll") and lines[2].startswith(f"7. `{chain[6].id}`")
    assert lines[-1].startswith(f"{len(chain)}. `{chain[-1].id}`") and lines[-1].endswith("no result yet")

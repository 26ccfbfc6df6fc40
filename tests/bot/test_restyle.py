"""/restyle and its buttons end to end: the real bot, the tiny engine, a local Discord-compatible server."""

from __future__ import annotations

import pytest

from bot import store
from bot.jobs import JobState
from engine.provenance import read_provenance
from tests.bot.conftest import COFFEE, delivered, gate_renders, private_text, run, running_bot
from tests.conftest import ASSETS
from tests.fakediscord import CallbackType, FakeDiscord, FakeUser, fast_discord_retries


async def restyle(fake: FakeDiscord, user=None, **options):
    image = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
    options = {"image": image, "prompt": "a cup of tea", **options}
    return await fake.slash(user or fake.alice, "restyle", options)


def test_restyle_defers_then_delivers_the_result_with_buttons(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await restyle(fake, strength=0.7)
            callback = await interaction.wait_callback()
            result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            job = store.recent_jobs(bot.db, limit=1)[0]
            return interaction, callback, result, job, fake.messages()

    interaction, callback, result, job, messages = run(main())
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert interaction.ack_latency < 3
    assert job.state is JobState.DELIVERED and job.result_message_id == result.id
    assert len([m for m in messages if m.attachments]) == 1  # delivered once
    parameters, data = read_provenance(result.attachments[0].data)
    assert "Denoising strength: 0.7" in parameters and data["job"]["prompt"] == "a cup of tea"
    embed = result.embeds[0]
    assert embed["title"] == "redux · strength 0.7"
    assert any(f["name"] == "Asked by" and str(interaction.user.id) in f["value"] for f in embed["fields"])
    assert any("larger source" in f["value"] for f in embed["fields"])  # the 300x200 source is small
    expected = {f"job:{job.id}:s30", f"job:{job.id}:s70", f"job:{job.id}:reroll", f"job:{job.id}:delete"}
    assert expected <= set(result.custom_ids)


def test_a_teammate_varies_the_result_and_the_lineage_grows(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await restyle(fake, strength=0.5, seed=1234)
            first = await fake.wait_for(lambda: delivered(interaction), timeout=30)
            parent = store.recent_jobs(bot.db, limit=1)[0]
            click = await fake.click(fake.bob, first, f"job:{parent.id}:s30")
            await click.wait_callback()
            child = await fake.wait_for(
                lambda: next((j for j in store.children(bot.db, parent.id) if j.state is JobState.DELIVERED), None),
                timeout=30,
            )
            child_message = fake.message(child.result_message_id)
            reroll = await fake.click(fake.alice, child_message, f"job:{child.id}:reroll")
            await reroll.wait_callback()
            grandchild = await fake.wait_for(
                lambda: next((j for j in store.children(bot.db, child.id) if j.state is JobState.DELIVERED), None),
                timeout=30,
            )
            return parent, child, child_message, grandchild, store.lineage(bot.db, grandchild.id), first

    parent, child, child_message, grandchild, lineage, first = run(main())
    assert child.owner_id != parent.owner_id  # bob pressed it
    assert child.strength == 0.3 and child.result_seed == parent.result_seed  # same source, prompt and seed
    assert child.source_hash == parent.source_hash and child.prompt == parent.prompt
    assert child_message.message_reference["message_id"] == first.id  # replies to the message it came from
    assert child_message.attachments and child_message.embeds[0]["title"] == "redux · strength 0.3"
    parent_link = next(f["value"] for f in child_message.embeds[0]["fields"] if f["name"] == "From")
    assert parent_link.endswith(f"/{parent.channel_id}/{first.id})")  # a jump link to the parent's result
    assert grandchild.result_seed != child.result_seed and grandchild.strength == 0.3
    assert [j.id for j in lineage] == [parent.id, child.id, grandchild.id]


def test_bad_inputs_get_a_private_message_and_nothing_runs(tmp_path):
    async def main():
        outcomes = []
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            cases = [
                ({"image": fake.add_attachment(b"just some notes", "notes.txt", "text/plain")}, "must be an image"),
                (
                    {"image": fake.add_attachment(COFFEE[: len(COFFEE) // 3], "cut.jpg", "image/jpeg")},
                    "corrupt or truncated",
                ),
                ({"image": fake.add_attachment(b"", "empty.png", "image/png")}, "empty (0 bytes)"),
                ({"prompt": "x" * 1001}, "over the 1000 limit"),
                ({"strength": 1.5}, "strength must be between 0 and 1"),
                ({"mode": "kontext", "prompt": ""}, "kontext needs an instruction"),
                ({"mode": "canny", "fast": True}, "fast works with the redux mode only"),
            ]
            for options, message in cases:
                interaction = await restyle(fake, **options)
                await interaction.wait_callback()
                text = await fake.wait_for(lambda i=interaction: private_text(i), timeout=10)
                outcomes.append((message, text, interaction))
            return outcomes, store.recent_jobs(bot.db, limit=5)

    outcomes, jobs = run(main())
    assert jobs == []
    for message, text, interaction in outcomes:
        assert message.lower() in text.lower(), (message, text)
        assert text[0].isupper() and text.endswith(".") and not text.endswith("..")
        assert "Traceback" not in text
        assert interaction.original is None or interaction.original.deleted or interaction.original.ephemeral


def test_limits_and_channels_are_enforced(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            other = fake.guild.add_channel("art")
            store.update_settings(bot.db, fake.guild.id, allowed_channels=[other.id], per_user_limit=1)
            wrong_channel = await restyle(fake)
            await wrong_channel.wait_callback()
            gate = gate_renders(bot)
            first = await fake.slash(
                fake.alice, "restyle", {"image": fake.add_attachment(COFFEE, "a.jpg", "image/jpeg")}, channel=other
            )
            await first.wait_callback()
            await fake.wait_for(lambda: store.active_count(bot.db, fake.alice.id) == 1)
            second = await fake.slash(
                fake.alice, "restyle", {"image": fake.add_attachment(COFFEE, "b.jpg", "image/jpeg")}, channel=other
            )
            await second.wait_callback()
            refusal = await fake.wait_for(lambda: private_text(second), timeout=10)
            gate.set()
            await fake.wait_for(lambda: delivered(first), timeout=30)
            return wrong_channel, second, refusal

    wrong_channel, second, refusal = run(main())
    assert "not enabled in this channel" in wrong_channel.callback.data["content"]
    assert "already have 1 jobs queued or running (the limit is 1)" in refusal
    assert second.original is None or second.original.deleted  # the deferred "thinking" message is gone


async def held_job(fake: FakeDiscord, bot, user):
    """A /restyle by `user` held before rendering: (the gate, the interaction, its job, its status message
    once it shows the Cancel button)."""
    gate = gate_renders(bot)
    interaction = await restyle(fake, user=user)
    await interaction.wait_callback()
    job = await fake.wait_for(lambda: (jobs := store.recent_jobs(bot.db, limit=1)) and jobs[0])
    status = await fake.wait_for(
        lambda: interaction.original and f"job:{job.id}:cancel" in interaction.original.custom_ids and interaction.original
    )
    return gate, interaction, job, status


def test_the_owner_may_cancel(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            gate, interaction, job, status = await held_job(fake, bot, fake.bob)
            own = await fake.click(fake.bob, status, f"job:{job.id}:cancel")
            await own.wait_callback()
            gate.set()
            await fake.wait_for(lambda: interaction.original.content == "Cancelled.", timeout=30)
            return own, store.get_job(bot.db, job.id)

    own, job = run(main())
    # bob owns the job, so his press cancels it (before its first step, while the GPU was busy)
    assert own.callback.data["content"] == "Cancelling…"
    assert job.state is JobState.CANCELLED and job.notified_at is not None


def test_a_moderator_may_cancel_and_others_may_not(tmp_path):
    async def main():
        stranger = FakeUser("carol")
        async with FakeDiscord(users=[stranger]) as fake, running_bot(fake, tmp_path) as bot:
            gate, interaction, job, status = await held_job(fake, bot, fake.bob)
            denied = await fake.click(stranger, status, f"job:{job.id}:cancel")
            await denied.wait_callback()
            allowed = await fake.click(fake.alice, status, f"job:{job.id}:cancel")
            await allowed.wait_callback()
            gate.set()
            await fake.wait_for(lambda: interaction.original.content == "Cancelled.", timeout=30)
            return denied, allowed, store.get_job(bot.db, job.id), interaction.original

    denied, allowed, job, status = run(main())
    assert "Only the job's owner or a moderator" in denied.callback.data["content"]
    assert allowed.callback.data["content"] == "Cancelling…"
    assert job.state is JobState.CANCELLED
    assert status.content == "Cancelled." and not status.attachments


def test_token_expiry_delivers_through_the_channel_with_a_mention(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            gate = gate_renders(bot)
            interaction = await restyle(fake)
            await interaction.wait_callback()
            fake.advance(16 * 60)  # the interaction token dies while the GPU is busy
            gate.set()
            job = await fake.wait_for(
                lambda: (j := store.recent_jobs(bot.db, limit=1)) and j[0].state is JobState.DELIVERED and j[0], timeout=30
            )
            return interaction, job, fake.message(job.result_message_id), fake.messages()

    interaction, job, result, messages = run(main())
    assert result.id != interaction.original.id  # a new channel message, not the dead interaction's
    assert f"<@{job.owner_id}>" in result.content and result.attachments
    assert result.message_reference["message_id"] == interaction.original.id
    assert len([m for m in messages if m.attachments]) == 1


def test_rate_limits_and_server_errors_on_delivery_still_deliver_once(tmp_path):
    async def main():
        with fast_discord_retries():
            async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
                bot.runner.delivery_retries = (0.05, 0.05, 0.05)
                results = []
                for status, count, applied in [(429, 2, False), (500, 1, True), (503, 8, False)]:
                    fake.fail_next("PATCH", "/api/v10/webhooks/*/messages/*", status, count=count, applied=applied)
                    interaction = await restyle(fake)
                    await interaction.wait_callback()
                    results.append(await fake.wait_for(lambda i=interaction: delivered(i, bot.db), timeout=30))
                jobs = store.recent_jobs(bot.db, limit=3)
                return results, jobs, fake.messages()

    _results, jobs, messages = run(main())
    assert all(j.state is JobState.DELIVERED for j in jobs)
    assert len([m for m in messages if m.attachments]) == 3  # one per job, none twice


def test_a_gateway_drop_during_a_job_still_ends_in_one_delivery(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            gate = gate_renders(bot)
            interaction = await restyle(fake)
            await interaction.wait_callback()
            await fake.drop_gateway(resume=True)
            gate.set()
            result = await fake.wait_for(lambda: delivered(interaction), timeout=30)
            await fake.wait_for(lambda: fake.gateway_stats.resumes >= 1, timeout=30)
            return result, fake.messages()

    _result, messages = run(main())
    assert len([m for m in messages if m.attachments]) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "canny"},
        {"mode": "depth", "style": "portrait"},
        {"mode": "kontext", "prompt": "make it red"},
        {"fast": True, "strength": 0.9},
    ],
)
def test_every_mode_through_restyle(tmp_path, options):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            extra = dict(options)
            if extra.get("style") == "portrait":
                extra["style"] = fake.add_attachment((ASSETS / "astronaut.jpg").read_bytes(), "style.jpg", "image/jpeg")
            interaction = await restyle(fake, **extra)
            result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            return result, store.recent_jobs(bot.db, limit=1)[0]

    result, job = run(main())
    parameters, data = read_provenance(result.attachments[0].data)
    assert data["job"]["mode"] == job.mode == options.get("mode", "redux")
    assert (job.style_hash is not None) == ("style" in options)
    assert job.fast == options.get("fast", False) and ("schnell" in parameters) == job.fast


def test_the_status_shows_progress_before_the_result(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await restyle(fake)
            result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            return [edit.changes.get("content") for edit in result.edits]

    contents = run(main())
    assert "Rendering…" in contents
    assert any(c and "4/4" in c and "█" in c for c in contents)  # the bar at the last step
    assert contents[-1] == ""  # then the result replaced the status text


def test_buttons_keep_working_after_a_restart(tmp_path):
    async def main():
        async with FakeDiscord() as fake:
            async with running_bot(fake, tmp_path) as bot:
                interaction = await restyle(fake)
                result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
                job = store.recent_jobs(bot.db, limit=1)[0]
            async with running_bot(fake, tmp_path) as bot:  # a new process would hold no view state either
                click = await fake.click(fake.bob, result, f"job:{job.id}:s90")
                await click.wait_callback()
                child = await fake.wait_for(
                    lambda: next((j for j in store.children(bot.db, job.id) if j.state is JobState.DELIVERED), None),
                    timeout=30,
                )
            return child

    child = run(main())
    assert child.strength == 0.9 and child.owner_id != 0


def test_attachment_caps_are_checked_before_and_while_downloading(tmp_path):
    from engine.images import ImageLimits

    async def main():
        limits = ImageLimits(max_bytes=len(COFFEE) - 1, max_pixels=250 * 250)
        async with FakeDiscord() as fake, running_bot(fake, tmp_path, limits=limits) as bot:
            texts = []
            too_big = fake.add_attachment(COFFEE, "big.jpg", "image/jpeg")
            lying = {**fake.add_attachment(COFFEE, "lying.jpg", "image/jpeg"), "size": 1000, "width": 10, "height": 10}
            huge = {**fake.add_attachment(COFFEE[:100], "huge.png", "image/png"), "width": 9000, "height": 9000}
            for attachment in (too_big, lying, huge):
                interaction = await fake.slash(fake.alice, "restyle", {"image": attachment})
                texts.append(await fake.wait_for(lambda i=interaction: private_text(i), timeout=10))
            fetched = {r.path for r in fake.requests if r.method == "GET" and "/attachments/" in r.path}
            return texts, fetched, too_big, huge, store.recent_jobs(bot.db, limit=3)

    texts, fetched, too_big, huge, jobs = run(main())
    assert "over the" in texts[0] and "MB limit" in texts[0]
    assert "over the" in texts[1]  # the declared size lied: stopped while streaming
    assert "9000x9000 = 81.0 MP, over the 0.1 MP limit" in texts[2]
    assert not any(too_big["url"].endswith(path) for path in fetched)  # refused from the declared size
    assert not any(huge["url"].endswith(path) for path in fetched)
    assert jobs == []


def test_delete_is_for_the_owner_or_a_moderator(tmp_path):
    async def main():
        carol = FakeUser("carol")
        async with FakeDiscord(users=[carol]) as fake, running_bot(fake, tmp_path) as bot:
            interaction = await restyle(fake, user=fake.bob)
            result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            job = store.recent_jobs(bot.db, limit=1)[0]
            stranger = await fake.click(carol, result, f"job:{job.id}:delete")
            refusal = await fake.wait_for(lambda: private_text(stranger), timeout=10)
            kept = not result.deleted
            moderator = await fake.click(fake.alice, result, f"job:{job.id}:delete")  # Manage Messages
            await moderator.wait_callback()
            await fake.wait_for(lambda: result.deleted, timeout=10)
            return refusal, kept

    refusal, kept = run(main())
    assert "Only the job's owner or a moderator" in refusal and kept


def test_in_a_private_guild_variations_stay_private(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            store.update_settings(bot.db, fake.guild.id, public_results=False)
            interaction = await restyle(fake)
            first = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            parent = store.recent_jobs(bot.db, limit=1)[0]
            click = await fake.click(fake.alice, first, f"job:{parent.id}:s90")
            await click.wait_callback()
            result = await fake.wait_for(lambda: delivered(click, bot.db), timeout=30)
            child = store.children(bot.db, parent.id)[0]
            return first, result, child, fake.messages()

    first, result, child, messages = run(main())
    assert first.ephemeral and result.ephemeral  # the variation is as private as its parent
    assert child.ephemeral and child.strength == 0.9 and child.state is JobState.DELIVERED
    assert not any(m.attachments and not m.ephemeral for m in messages)  # nothing public


def test_a_private_result_that_outlives_its_token_goes_by_direct_message(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            store.update_settings(bot.db, fake.guild.id, public_results=False)
            gate = gate_renders(bot)
            interaction = await restyle(fake)
            await interaction.wait_callback()
            fake.advance(16 * 60)  # the token dies while the GPU is busy
            gate.set()
            job = await fake.wait_for(
                lambda: (j := store.recent_jobs(bot.db, limit=1)) and j[0].state is JobState.DELIVERED and j[0], timeout=30
            )
            dm = fake.dm_channels[fake.alice.id]
            return job, fake.messages(dm), fake.messages(fake.channel)

    job, direct, public = run(main())
    assert [m.id for m in direct] == [job.result_message_id] and direct[0].attachments
    assert not any(m.attachments for m in public)  # nothing private leaked into the channel

"""The "Restyle image" message menu end to end: a modal, then a job from the message's image."""

from __future__ import annotations

import hashlib

from bot import store
from bot.jobs import JobState
from tests.bot.conftest import (
    COFFEE,
    delivered,
    delivered_child,
    modal_inputs,
    private_text,
    restyled,
    run,
    running_bot,
)
from tests.fakediscord import CallbackType, FakeDiscord

MENU = "Restyle image"


async def open_menu(fake: FakeDiscord, user, target):
    """`user` picks the menu on `target`; the modal's custom_id (None if the bot answered otherwise)."""
    interaction = await fake.context_menu(user, MENU, target)
    callback = await interaction.wait_callback()
    return interaction, (callback.data["custom_id"] if callback.type == CallbackType.MODAL else None)


def test_a_users_photo_becomes_the_source_and_the_result_replies_to_it(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            photo = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
            posted = await fake.user_message(fake.alice, content="my coffee", attachments=[photo])
            menu, custom_id = await open_menu(fake, fake.bob, posted)
            submitted = await fake.submit_modal(fake.bob, custom_id, {"prompt": "an ink drawing", "mode": ["canny"]})
            callback = await submitted.wait_callback()
            job = await fake.wait_for(lambda: delivered_job(bot.db), timeout=30)
            return posted, menu, custom_id, submitted, callback, job, fake.message(job.result_message_id)

    posted, menu, custom_id, submitted, callback, job, result = run(main())
    assert menu.ack_latency < 3 and len(custom_id) <= 100
    assert modal_inputs(menu) == {"prompt": None, "mode": ["redux"], "strength": "0.5"}  # the guild's defaults
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and submitted.ack_latency < 3
    assert submitted.original.ephemeral and submitted.original.content.startswith("Queued")  # a private note
    assert (job.kind, job.mode, job.prompt, job.strength) == ("context", "canny", "an ink drawing", 0.5)
    assert job.owner_id == submitted.user.id != posted.author.id and job.parent_id is None  # bob, on alice's photo
    assert job.source_hash == hashlib.sha256(COFFEE).hexdigest()
    assert result.message_reference["message_id"] == job.reply_to_message_id == posted.id
    assert not result.ephemeral and result.attachments and result.embeds[0]["title"] == "canny · strength 0.5"


def delivered_job(db):
    return next((j for j in store.recent_jobs(db, limit=5) if j.state is JobState.DELIVERED), None)


def test_on_a_result_the_modal_starts_from_that_job_and_records_it_as_parent(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            first, parent = await restyled(fake, bot, strength=0.7, mode="depth")
            menu, custom_id = await open_menu(fake, fake.bob, first)
            await fake.submit_modal(fake.bob, custom_id, {"strength": "0.3"})
            child = await fake.wait_for(lambda: delivered_child(bot.db, parent.id), timeout=30)
            return first, parent, menu, child, fake.message(child.result_message_id), store.lineage(bot.db, child.id)

    first, parent, menu, child, result, lineage = run(main())
    assert modal_inputs(menu) == {"prompt": "a cup of tea", "mode": ["depth"], "strength": "0.7"}
    assert child.kind == "context" and child.parent_id == parent.id
    assert (child.prompt, child.mode, child.strength) == ("a cup of tea", "depth", 0.3)
    assert child.source_hash == parent.result_hash  # the result's PNG, downloaded from the message
    assert [j.id for j in lineage] == [parent.id, child.id]
    assert result.message_reference["message_id"] == first.id


def test_in_a_guild_with_private_results_the_result_stays_private(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            store.update_settings(bot.db, fake.guild.id, public_results=False)
            photo = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
            posted = await fake.user_message(fake.alice, attachments=[photo])
            _, custom_id = await open_menu(fake, fake.alice, posted)
            submitted = await fake.submit_modal(fake.alice, custom_id, {"prompt": "an ink drawing"})
            result = await fake.wait_for(lambda: delivered(submitted, bot.db), timeout=30)
            return result, store.recent_jobs(bot.db, limit=1)[0]

    result, job = run(main())
    assert result.ephemeral and job.ephemeral and job.result_message_id == result.id


def test_an_unexpected_failure_is_answered_privately(tmp_path, caplog):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:

            async def broken(job):
                raise RuntimeError("the engine is gone")

            bot.runner.start = broken
            photo = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
            posted = await fake.user_message(fake.alice, attachments=[photo])
            _, custom_id = await open_menu(fake, fake.alice, posted)
            submitted = await fake.submit_modal(fake.alice, custom_id, {"prompt": "an ink drawing"})
            text = await fake.wait_for(lambda: private_text(submitted), timeout=10)
            await fake.wait_for(lambda: submitted.original.deleted)  # no "thinking…" left spinning
            return text

    text = run(main())
    assert text == "Sorry, something went wrong on our side; please try again."
    assert any("the engine is gone" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_message_without_an_image_is_refused(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            notes = fake.add_attachment(b"just notes", "notes.txt", "text/plain")
            answers = []
            for message in (
                await fake.user_message(fake.alice, content="no picture here"),
                await fake.user_message(fake.alice, attachments=[notes]),
            ):
                menu, custom_id = await open_menu(fake, fake.bob, message)
                answers.append((menu, custom_id))
            return answers, store.recent_jobs(bot.db, limit=5)

    answers, jobs = run(main())
    assert jobs == []
    for menu, custom_id in answers:
        assert custom_id is None and menu.callback.type == CallbackType.CHANNEL_MESSAGE
        assert menu.original.ephemeral and private_text(menu) == "That message has no image."


def test_bad_modal_values_get_a_private_message_and_nothing_runs(tmp_path):
    async def main():
        outcomes = []
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            photo = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
            posted = await fake.user_message(fake.alice, attachments=[photo])
            cases = [
                ({"strength": "strong"}, "Strength must be a number between 0 and 1, got 'strong'."),
                ({"strength": "1.5"}, "Strength must be between 0 and 1, got 1.5."),
                ({"strength": "nan"}, "Strength must be between 0 and 1, got nan."),
                ({"mode": ["fill"]}, "Unknown mode 'fill': choose one of redux, canny, depth, kontext."),
                ({"prompt": "x" * 1001}, "The prompt is 1001 characters, over the 1000 limit."),
                ({"mode": ["kontext"], "prompt": " "}, "Kontext needs an instruction"),
            ]
            for values, expected in cases:
                # a modal answered is closed: each try opens the menu again, as a user would
                _, custom_id = await open_menu(fake, fake.alice, posted)
                submitted = await fake.submit_modal(fake.alice, custom_id, values)
                await submitted.wait_callback()
                outcomes.append((expected, submitted))
            return outcomes, store.recent_jobs(bot.db, limit=5)

    outcomes, jobs = run(main())
    assert jobs == []
    for expected, submitted in outcomes:
        assert submitted.callback.type == CallbackType.CHANNEL_MESSAGE and submitted.original.ephemeral
        assert private_text(submitted).startswith(expected), (expected, private_text(submitted))

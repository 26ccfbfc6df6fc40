"""Remix, Use as input and Compare on a result, end to end: buttons, modals, lineage, the side-by-side sheet."""

from __future__ import annotations

import asyncio
import hashlib
import io

from PIL import Image

from bot import store
from bot.compare import GAP
from bot.jobs import GUILD_MODES, Job, JobState
from cogs.modals import RemixModal, UseAsInputModal
from tests.bot.conftest import (
    COFFEE,
    delivered_child,
    modal_inputs,
    private_text,
    restyled,
    run,
    running_bot,
)
from tests.fakediscord import CallbackType, FakeDiscord


async def press_and_submit(fake: FakeDiscord, bot, user, message, custom_id: str, values: dict):
    """`user` presses the button, then submits the modal it opened: (the press, the submission)."""
    press = await fake.click(user, message, custom_id)
    callback = await press.wait_callback()
    assert callback.type == CallbackType.MODAL, callback
    submitted = await fake.submit_modal(user, callback.data["custom_id"], values)
    await submitted.wait_callback()
    return press, submitted


def test_a_teammate_remixes_a_result_from_the_same_source(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            first, parent = await restyled(fake, bot, strength=0.6, seed=42)  # alice's
            press, submitted = await press_and_submit(
                fake, bot, fake.bob, first, f"job:{parent.id}:remix", {"prompt": "a watercolour", "strength": "0.8"}
            )
            child = await fake.wait_for(lambda: delivered_child(bot.db, parent.id), timeout=30)
            await asyncio.sleep(0.2)  # time for a second handler, were there one
            children = store.children(bot.db, parent.id)
            return first, parent, press, submitted, child, fake.message(child.result_message_id), children

    first, parent, press, submitted, child, result, children = run(main())
    assert [c.id for c in children] == [child.id]  # the live modal ran once: the late-modal cog left it alone
    assert all(len(custom_id) <= 100 for custom_id in first.custom_ids)
    assert {f"job:{parent.id}:use", f"job:{parent.id}:compare"} <= set(first.custom_ids)
    assert modal_inputs(press) == {"prompt": "a cup of tea", "mode": ["redux"], "strength": "0.6"}
    assert press.ack_latency < 3 and submitted.ack_latency < 3
    assert submitted.callback.type == CallbackType.DEFERRED_UPDATE_MESSAGE  # the result message stays as it was
    assert (child.kind, child.parent_id, child.owner_id) == ("remix", parent.id, submitted.user.id)
    assert child.owner_id != parent.owner_id  # bob needs no permission to remix alice's result
    assert (child.prompt, child.mode, child.strength) == ("a watercolour", "redux", 0.8)
    assert child.source_hash == parent.source_hash and child.seed == parent.result_seed == 42
    assert result.message_reference["message_id"] == first.id  # replies to the message pressed
    assert result.attachments and result.embeds[0]["title"] == "redux · strength 0.8"
    assert not first.deleted and first.attachments  # the parent's result is untouched


def test_use_as_input_starts_from_the_result(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            first, parent = await restyled(fake, bot, strength=0.4, mode="canny")
            press, _ = await press_and_submit(
                fake, bot, fake.bob, first, f"job:{parent.id}:use", {"prompt": "now at night", "mode": ["depth"]}
            )
            child = await fake.wait_for(lambda: delivered_child(bot.db, parent.id), timeout=30)
            await press_and_submit(  # alice takes bob's result further, with its values as they are
                fake, bot, fake.alice, fake.message(child.result_message_id), f"job:{child.id}:use", {}
            )
            grandchild = await fake.wait_for(lambda: delivered_child(bot.db, child.id), timeout=30)
            return parent, press, child, grandchild, store.lineage(bot.db, grandchild.id)

    parent, press, child, grandchild, lineage = run(main())
    assert modal_inputs(press) == {"prompt": "a cup of tea", "mode": ["canny"], "strength": "0.4"}
    assert (child.kind, child.parent_id, child.mode, child.prompt) == ("use_as_input", parent.id, "depth", "now at night")
    assert child.source_hash == parent.result_hash != parent.source_hash
    assert grandchild.source_hash == child.result_hash and grandchild.prompt == "now at night"
    assert [j.id for j in lineage] == [parent.id, child.id, grandchild.id]
    assert all(j.state is JobState.DELIVERED for j in lineage)


def test_compare_shows_source_and_result_side_by_side_privately(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            first, parent = await restyled(fake, bot)
            press = await fake.click(fake.bob, first, f"job:{parent.id}:compare")
            callback = await press.wait_callback()
            sheet = await fake.wait_for(lambda: press.original and press.original.attachments and press.original, timeout=10)
            return first, callback, sheet, store.recent_jobs(bot.db, limit=5)

    first, callback, sheet, jobs = run(main())
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and sheet.ephemeral
    assert len(jobs) == 1  # comparing starts no job
    width, height = Image.open(io.BytesIO(sheet.attachments[0].data)).size
    source = Image.open(io.BytesIO(COFFEE)).size
    result = Image.open(io.BytesIO(first.attachments[0].data)).size
    # both at the same height, so the sheet is as wide as the source and the result scaled to it
    expected = source[0] * height / source[1] + GAP + result[0] * height / result[1]
    assert height == min(max(source[1], result[1]), 1024) and abs(width - expected) <= 2


def test_bad_remix_values_are_refused_privately(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            first, parent = await restyled(fake, bot)
            outcomes = []
            for values in ({"strength": "-0.1"}, {"strength": "half"}, {"mode": ["kontext"], "prompt": ""}):
                _, submitted = await press_and_submit(fake, bot, fake.bob, first, f"job:{parent.id}:remix", values)
                outcomes.append(await fake.wait_for(lambda s=submitted: private_text(s), timeout=10))
            return outcomes, store.children(bot.db, parent.id), first

    outcomes, children, first = run(main())
    assert children == [] and not first.deleted
    assert outcomes[0] == "Strength must be between 0 and 1, got -0.1."
    assert outcomes[1] == "Strength must be a number between 0 and 1, got 'half'."
    assert outcomes[2].startswith("Kontext needs an instruction")


def test_what_remix_and_use_as_input_keep_of_their_parent():
    source, result, mask, style = (hashlib.sha256(name).hexdigest() for name in (b"source", b"result", b"mask", b"style"))
    inpainted = Job(
        owner_id=1,
        channel_id=2,
        kind="inpaint",
        mode="fill",
        prompt="an apple",
        strength=1.0,
        result_seed=5,
        source_hash=source,
        result_hash=result,
        mask_hash=mask,
    )
    styled = Job(owner_id=1, channel_id=2, mode="canny", source_hash=source, result_hash=result, style_hash=style)

    async def main():  # discord.py builds modals inside a running event loop
        remix, use = RemixModal(inpainted, user_id=9), UseAsInputModal(inpainted, 9, default_mode="depth")
        return remix, use, RemixModal(styled, 9), UseAsInputModal(styled, 9, default_mode="redux")

    remix, use, remix_styled, use_styled = asyncio.run(main())
    # a fill job's remix may stay fill, with the same source, mask and seed
    assert remix.modes == (*GUILD_MODES, "fill") and remix.default_mode == "fill"
    again = remix.ask("a pear", "fill", 0.9)
    assert (again.image, again.mask, again.seed, again.parent_id) == (source, mask, 5, inpainted.id)
    assert remix.ask("a pear", "redux", 0.9).mask is None  # redux takes no mask
    # its result is another image: the mask does not fit it, so fill is not offered
    assert use.modes == GUILD_MODES and use.default_mode == "depth"
    onwards = use.ask("a pear", "depth", 0.5)
    assert (onwards.image, onwards.mask, onwards.seed) == (result, None, None)
    # a style image goes along where the mode takes one
    assert remix_styled.ask("", "canny", 0.5).style == style and remix_styled.ask("", "redux", 0.5).style is None
    assert use_styled.default_mode == "canny" and use_styled.ask("", "depth", 0.5).style == style


def test_a_remix_form_left_open_across_a_restart_still_starts_its_job(tmp_path):
    async def main():
        async with FakeDiscord() as fake:
            async with running_bot(fake, tmp_path) as bot:
                first, parent = await restyled(fake, bot, strength=0.6, seed=7)
                press = await fake.click(fake.bob, first, f"job:{parent.id}:remix")
                modal = await press.wait_callback()
            async with running_bot(fake, tmp_path) as bot:  # a new process holds no modal in memory
                submitted = await fake.submit_modal(
                    fake.bob, modal.data["custom_id"], {"prompt": "a watercolour", "strength": "0,8"}
                )
                await submitted.wait_callback()
                child = await fake.wait_for(lambda: delivered_child(bot.db, parent.id), timeout=30)
            return parent, submitted, child

    parent, submitted, child = run(main())
    assert submitted.callback.type == CallbackType.DEFERRED_UPDATE_MESSAGE
    assert (child.kind, child.owner_id, child.prompt, child.strength) == ("remix", submitted.user.id, "a watercolour", 0.8)
    assert child.seed == parent.result_seed == 7 and child.source_hash == parent.source_hash


def test_a_restyle_image_form_left_open_across_a_restart_still_starts_its_job(tmp_path):
    async def main():
        async with FakeDiscord() as fake:
            async with running_bot(fake, tmp_path) as bot:
                first, parent = await restyled(fake, bot)
                menu = await fake.context_menu(fake.bob, "Restyle image", first)
                modal = await menu.wait_callback()
            async with running_bot(fake, tmp_path) as bot:
                submitted = await fake.submit_modal(fake.bob, modal.data["custom_id"], {"prompt": "as a mosaic"})
                await submitted.wait_callback()
                child = await fake.wait_for(lambda: delivered_child(bot.db, parent.id), timeout=30)
            return first, child, fake.message(child.result_message_id)

    first, child, result = run(main())
    assert (child.kind, child.prompt) == ("context", "as a mosaic")
    assert result.message_reference["message_id"] == first.id

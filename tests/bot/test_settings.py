"""/settings end to end: who may use it, how values are checked, and that /restyle follows them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import discord
import pytest

from bot import store
from cogs.settings import apply_changes
from tests.bot.conftest import COFFEE, delivered, run, running_bot
from tests.fakediscord import EPHEMERAL, CallbackType, FakeDiscord


async def settings(fake: FakeDiscord, user=None, **options):
    """Run /settings and return its callback, which is always a private message."""
    interaction = await fake.slash(user or fake.alice, "settings", options)
    callback = await interaction.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.data["flags"] & EPHEMERAL, callback
    return callback


def shown(callback) -> dict[str, str]:
    """The settings embed's fields by name."""
    return {field["name"]: field["value"] for field in callback.data["embeds"][0]["fields"]}


async def restyle(fake: FakeDiscord, channel=None, **options):
    image = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
    interaction = await fake.slash(
        fake.alice, "restyle", {"image": image, "prompt": "a cup of tea", **options}, channel=channel
    )
    await interaction.wait_callback()
    return interaction


def test_settings_are_only_for_members_with_manage_server(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            # server admins may let anyone see the command, so bob's call reaches the bot and must be refused there
            refused = await settings(fake, fake.bob, default_mode="canny", per_user_limit=20)
            looked = await settings(fake, fake.bob)
            schema = next(c for c in fake.commands(fake.guild) if c["name"] == "settings")
            return refused, looked, schema, store.get_settings(bot.db, fake.guild.id)

    refused, looked, schema, after = run(main())
    message = "Only members with the Manage Server permission can change Restyle's settings."
    assert refused.data["content"] == message and looked.data["content"] == message
    assert not refused.data.get("embeds")
    assert (after.default_mode, after.per_user_limit) == ("redux", 3)
    assert int(schema["default_member_permissions"]) == discord.Permissions(manage_guild=True).value


def test_settings_show_save_and_refuse_bad_values(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            art = fake.guild.add_channel("art")  # made after the bot connected: it is in no cache
            current = await settings(fake)
            too_strong = await settings(fake, default_mode="depth", default_strength=1.5)
            unchanged = store.get_settings(bot.db, fake.guild.id)
            with pytest.raises(ValueError, match="per_user_limit"):  # Discord's client enforces the 1..20 range
                await fake.slash(fake.alice, "settings", {"per_user_limit": 21})
            saved = await settings(fake, per_user_limit=5, public_results=False, allowed_channel=art)
            added = await settings(fake, allowed_channel=fake.channel)
            cleared = await settings(fake, clear_channels=True)
            return (
                fake,
                art,
                current,
                too_strong,
                unchanged,
                saved,
                added,
                cleared,
                store.get_settings(bot.db, fake.guild.id),
            )

    fake, art, current, too_strong, unchanged, saved, added, cleared, final = run(main())
    assert current.data.get("content") is None
    assert shown(current) == {
        "Default mode": "redux",
        "Default strength": "0.5",
        "Jobs per member": "3 at once",
        "Results": "public",
        "Channels": "every channel",
    }
    assert too_strong.data["content"] == "Nothing was changed: default_strength must be between 0 and 1, got 1.5."
    assert (unchanged.default_mode, unchanged.default_strength) == ("redux", 0.5)  # all or nothing
    assert saved.data["content"] == "Saved."
    assert shown(saved)["Jobs per member"] == "5 at once" and shown(saved)["Channels"] == f"<#{art.id}>"
    assert shown(saved)["Results"].startswith("private")
    assert shown(added)["Channels"] == f"<#{art.id}>, <#{fake.channel.id}>"
    assert shown(cleared)["Channels"] == "every channel"
    assert final.allowed_channels == [] and final.per_user_limit == 5 and final.public_results is False


def test_restyle_follows_the_settings(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            await settings(fake, default_mode="canny", default_strength=0.6)
            defaults = await restyle(fake)
            await fake.wait_for(lambda: delivered(defaults, bot.db), timeout=30)
            default_job = store.recent_jobs(bot.db, limit=1)[0]

            await settings(fake, public_results=False)
            private = await restyle(fake, mode="redux")
            await fake.wait_for(lambda: delivered(private, bot.db), timeout=30)
            private_job = store.recent_jobs(bot.db, limit=1)[0]

            art = fake.guild.add_channel("art")
            await settings(fake, allowed_channel=art, public_results=True)
            elsewhere = await restyle(fake, mode="redux")
            there = await restyle(fake, channel=art, mode="redux")
            await fake.wait_for(lambda: delivered(there, bot.db), timeout=30)
            return art, default_job, private, private_job, elsewhere, there, store.recent_jobs(bot.db, limit=5)

    art, default_job, private, private_job, elsewhere, there, jobs = run(main())
    assert (default_job.mode, default_job.strength) == ("canny", 0.6)  # no mode or strength was given
    assert private.callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert private.callback.data["flags"] & EPHEMERAL and private.original.ephemeral and private_job.ephemeral
    assert elsewhere.callback.type == CallbackType.CHANNEL_MESSAGE
    assert elsewhere.callback.data["content"] == f"Restyle is not enabled in this channel; use <#{art.id}>."
    assert there.callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and not there.original.ephemeral
    assert len(jobs) == 3 and jobs[0].channel_id == art.id


def test_two_admins_adding_channels_at_once_lose_neither(tmp_path):
    # Each /settings runs apply_changes in a thread of its own, on its own connection as two bot
    # processes would; every channel added must survive the others' additions.
    path = tmp_path / "restyle.db"
    store.open_db(path)

    def add(first: int) -> None:
        db = store.open_db(path)
        for channel in range(first, first + 40):
            apply_changes(db, 7, {}, add_channel=channel, clear_channels=False)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(add, (1000, 2000)))
    channels = store.get_settings(store.open_db(path), 7).allowed_channels
    assert sorted(channels) == [*range(1000, 1040), *range(2000, 2040)]

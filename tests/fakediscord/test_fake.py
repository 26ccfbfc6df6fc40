"""The fake Discord against the real discord.py client: a miniature Restyle bot connects, syncs its
commands and handles a slash command, a persistent button, a modal and a context menu, while the
fake injects rate limits, server errors, a dropped gateway and expired interaction tokens."""

from __future__ import annotations

import asyncio
import io
import json
import re
import zlib
from collections.abc import Awaitable, Callable

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakediscord import CallbackType, FakeChannel, FakeDiscord, FakeGuild, fast_discord_retries, run_bot

TEST_TIMEOUT = 20.0
ATTACH_FILES = discord.Permissions(attach_files=True).value


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run one async test in a fresh loop, bounded so nothing can hang."""
    asyncio.run(asyncio.wait_for(test(), TEST_TIMEOUT))


def png(color: str = "red", size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# -- a miniature Restyle bot --------------------------------------------------------------------------


class RerunButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"job:(?P<job_id>[0-9]+):rerun"):
    """Persistent: its state is in the custom_id, so any bot process can handle old buttons."""

    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(label="Re-run", custom_id=f"job:{job_id}:rerun"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str], /
    ) -> RerunButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[DemoBot]) -> None:  # type: ignore[override]
        interaction.client.reruns.append((self.job_id, interaction.user.id))
        await interaction.response.send_message(f"re-running job {self.job_id}", ephemeral=True)


class RemixModal(discord.ui.Modal, title="Remix"):
    # One input in the classic action-row layout, one in the newer label layout: the fake answers both.
    prompt = discord.ui.TextInput(label="Prompt", custom_id="prompt")
    notes = discord.ui.Label(text="Notes", component=discord.ui.TextInput(custom_id="notes", required=False))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        notes = self.notes.component.value  # type: ignore[attr-defined]
        await interaction.response.send_message(f"remix: {self.prompt.value} ({notes})")


@app_commands.command(description="Restyle an image")
async def restyle(
    interaction: discord.Interaction[DemoBot],
    image: discord.Attachment,
    prompt: str,
    strength: app_commands.Range[float, 0.0, 1.0] = 0.5,
) -> None:
    await interaction.response.defer(thinking=True)
    data = await image.read()
    interaction.client.inputs.append((data, prompt, strength))
    view = discord.ui.View(timeout=None).add_item(RerunButton(7))
    await interaction.followup.send(f"{prompt} @ {strength}", file=discord.File(io.BytesIO(data), "result.png"), view=view)
    await interaction.edit_original_response(content="done")


@app_commands.command(description="Remix the last prompt")
async def remix(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(RemixModal())


@app_commands.command(description="Waits for the test before answering")
async def wait(interaction: discord.Interaction[DemoBot], defer_first: bool) -> None:
    client = interaction.client
    try:
        if defer_first:
            await interaction.response.defer()
        await client.release.wait()
        if not defer_first:
            await interaction.response.defer()
        await interaction.followup.send("late")
    except discord.HTTPException as exc:
        client.errors.append(exc)


async def restyle_message(interaction: discord.Interaction, message: discord.Message) -> None:
    attachment = message.attachments[0]
    data = await attachment.read()
    await interaction.response.send_message(f"restyling {attachment.filename} ({len(data)} bytes)", ephemeral=True)


class DemoBot(commands.Bot):
    """Records what it handled, for the tests to check."""

    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.default()
        intents.members = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.guild_id = guild_id
        self.inputs: list[tuple[bytes, str, float]] = []
        self.reruns: list[tuple[int, int]] = []
        self.errors: list[discord.HTTPException] = []
        self.seen: list[discord.Message] = []
        self.release = asyncio.Event()
        for command in (restyle, remix, wait):
            self.tree.add_command(command)
        self.tree.add_command(app_commands.ContextMenu(name="Restyle image", callback=restyle_message))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(RerunButton)
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No pause: discord.py waits 5 seconds before identifying again, for Discord's identify limit."""


def text_channel(bot: discord.Client, fake: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


# -- connecting ---------------------------------------------------------------------------------------


def test_bot_connects_with_the_guild_cached_and_commands_synced() -> None:
    async def scenario() -> None:
        studio = FakeGuild("Studio", channels=[FakeChannel("renders")])
        async with FakeDiscord(guilds=[studio]) as fake:
            bot = DemoBot(fake.guild.id)
            async with run_bot(fake, bot):
                guild = bot.get_guild(fake.guild.id)
                assert guild is not None and [c.name for c in guild.text_channels] == ["general"]
                assert {m.name for m in guild.members} == {"alice", "bob", "Restyle"}
                assert guild.me.guild_permissions.attach_files
                alice, bob = guild.get_member(fake.alice.id), guild.get_member(fake.bob.id)
                assert alice and alice.guild_permissions.manage_guild and alice.guild_permissions.manage_messages
                assert bob and not bob.guild_permissions.manage_guild
                other = bot.get_guild(studio.id)
                assert other is not None and [c.name for c in other.text_channels] == ["renders"]
                assert {c["name"] for c in fake.commands(fake.guild)} == {"restyle", "remix", "wait", "Restyle image"}
                assert fake.commands(studio) == []
                await fake.wait_for(lambda: fake.gateway_stats.heartbeats >= 1)
            assert fake.gateway_stats.identifies == 1
            assert fake.unknown_requests == []

    run(scenario)


# -- interactions -------------------------------------------------------------------------------------


def test_slash_command_defers_reads_the_attachment_and_follows_up_with_a_file() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake:
            bot = DemoBot(fake.guild.id)
            async with run_bot(fake, bot):
                image = png()
                attachment = fake.add_attachment(image, "cat.png")
                assert (attachment["width"], attachment["height"], attachment["content_type"]) == (8, 6, "image/png")

                options = {"image": attachment, "prompt": "ink", "strength": 0.7}
                interaction = await fake.slash(fake.alice, "restyle", options)
                callback = await interaction.wait_callback()
                assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
                assert interaction.ack_latency is not None and interaction.ack_latency < 3
                original = interaction.original
                assert original is not None
                await fake.wait_for(lambda: original.edits)

                assert bot.inputs == [(image, "ink", 0.7)]
                [followup] = interaction.followups
                assert followup.content == "ink @ 0.7" and followup.custom_ids == ["job:7:rerun"]
                [result] = followup.attachments
                assert (result.filename, result.content_type, result.data) == ("result.png", "image/png", image)
                assert fake.requests_to("POST", "/webhooks/*")[0].files[0].data == image
                assert original.content == "done" and not original.loading
                assert fake.messages(fake.channel) == [original, followup]

    run(scenario)


def test_slash_options_are_checked_against_the_synced_schema() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)):
            image = fake.add_attachment(png(), "cat.png")
            with pytest.raises(LookupError, match="no command 'paint'"):
                await fake.slash(fake.alice, "paint")
            with pytest.raises(ValueError, match="needs option"):
                await fake.slash(fake.alice, "restyle", {"prompt": "ink"})
            with pytest.raises(ValueError, match="no option"):
                await fake.slash(fake.alice, "restyle", {"image": image, "prompt": "ink", "seed": 1})
            with pytest.raises(TypeError, match="strength"):
                await fake.slash(fake.alice, "restyle", {"image": image, "prompt": "ink", "strength": "high"})
            with pytest.raises(ValueError, match="within"):
                await fake.slash(fake.alice, "restyle", {"image": image, "prompt": "ink", "strength": 1.5})
            assert fake.interactions == []

    run(scenario)


def test_a_persistent_button_works_after_the_bot_restarts() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake:
            async with run_bot(fake, DemoBot(fake.guild.id)) as first:
                view = discord.ui.View(timeout=None).add_item(RerunButton(42))
                await text_channel(first, fake).send("job 42 finished", view=view)
            message = await fake.wait_for_message(lambda m: m.content == "job 42 finished")

            async with run_bot(fake, DemoBot(fake.guild.id)) as second:  # a new process knows only the template
                with pytest.raises(LookupError, match="no component"):
                    await fake.click(fake.bob, message, "job:43:rerun")
                interaction = await fake.click(fake.bob, message, "job:42:rerun")
                assert (await interaction.wait_callback()).type == CallbackType.CHANNEL_MESSAGE
                assert second.reruns == [(42, fake.bob.id)]
                assert interaction.original and interaction.original.ephemeral
                assert interaction.original.content == "re-running job 42"
            assert fake.gateway_stats.identifies == 2

    run(scenario)


def test_modal_round_trip() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)):
            opened = await fake.slash(fake.alice, "remix")
            shown = await opened.wait_callback()
            assert shown.type == CallbackType.MODAL and shown.data["title"] == "Remix"
            with pytest.raises(LookupError, match="no modal"):
                await fake.submit_modal(fake.bob, shown.data["custom_id"], {"prompt": "x"})

            submitted = await fake.submit_modal(
                fake.alice, shown.data["custom_id"], {"prompt": "neon", "notes": "more blue"}
            )
            assert (await submitted.wait_callback()).type == CallbackType.CHANNEL_MESSAGE
            assert submitted.original and submitted.original.content == "remix: neon (more blue)"

    run(scenario)


def test_message_context_menu_reads_a_users_image() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake:
            bot = DemoBot(fake.guild.id)
            async with run_bot(fake, bot):
                image = png("blue")
                posted = await fake.user_message(fake.bob, content="look", attachments=[fake.add_attachment(image, "p.png")])
                interaction = await fake.context_menu(fake.alice, "Restyle image", posted)
                await interaction.wait_callback()
                assert interaction.original and interaction.original.ephemeral
                assert interaction.original.content == f"restyling p.png ({len(image)} bytes)"
                # Without the message content intent, on_message saw the post but not its content:
                # the context menu is how such a bot gets at the image.
                seen = await fake.wait_for(lambda: next((m for m in bot.seen if m.id == posted.id), None))
                assert (seen.content, seen.attachments) == ("", [])

    run(scenario)


# -- faults -------------------------------------------------------------------------------------------


def test_a_rate_limited_send_is_retried_and_posts_once() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            fake.fail_next("POST", "/channels/*/messages", 429, retry_after=0.05)
            sent = await text_channel(bot, fake).send("hello")
            assert [r.status for r in fake.requests_to("POST", "/channels/*/messages")] == [429, 200]
            assert [m.id for m in fake.messages(fake.channel)] == [sent.id]

    run(scenario)


@pytest.mark.parametrize("failures", [1, 5])
def test_server_errors_are_retried_then_surface(failures: int) -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            fake.fail_next("POST", "/channels/*/messages", 500, count=failures)
            with fast_discord_retries():
                if failures == 5:  # discord.py tries five times
                    with pytest.raises(discord.DiscordServerError):
                        await text_channel(bot, fake).send("hello")
                else:
                    await text_channel(bot, fake).send("hello")
            attempts = fake.requests_to("POST", "/channels/*/messages")
            assert [r.status for r in attempts] == [500] * failures + ([] if failures == 5 else [200])
            assert len(fake.messages(fake.channel)) == (0 if failures == 5 else 1)

    run(scenario)


def test_enforce_nonce_answers_a_repeated_create_with_the_first_message() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            channel = text_channel(bot, fake)
            first = await channel.send("once", nonce=1234)
            again = await channel.send("once", nonce=1234)
            other = await channel.send("twice", nonce=5678)
            assert again.id == first.id != other.id
            # The case nonces are for: Discord posted the message but the answer was lost.
            fake.fail_next("POST", "/channels/*/messages", 500, applied=True)
            with fast_discord_retries():
                retried = await channel.send("lost answer", nonce=9999)
            assert [m.content for m in fake.messages(fake.channel)] == ["once", "twice", "lost answer"]
            assert fake.messages(fake.channel)[-1].id == retried.id

    run(scenario)


def test_bot_without_attach_files_cannot_upload() -> None:
    async def scenario() -> None:
        async with FakeDiscord(bot_permissions=0) as fake:
            fake.guild.everyone_permissions &= ~ATTACH_FILES  # roles only add: @everyone must lose it too
            async with run_bot(fake, DemoBot(fake.guild.id)) as bot:
                with pytest.raises(discord.Forbidden) as raised:
                    await text_channel(bot, fake).send(file=discord.File(io.BytesIO(png()), "x.png"))
                assert raised.value.code == 50013

    run(scenario)


@pytest.mark.parametrize("resume", [True, False])
def test_a_dropped_gateway_reconnects_and_events_still_arrive(resume: bool) -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            # The message is dispatched while the socket is down: a resume replays it.
            _, posted = await asyncio.gather(fake.drop_gateway(resume=resume), fake.user_message(fake.bob))
            stats = fake.gateway_stats
            await fake.wait_for(lambda: (stats.resumes, stats.identifies) == ((1, 1) if resume else (0, 2)))
            if resume:
                await fake.wait_for(lambda: any(m.id == posted.id for m in bot.seen))
                assert stats.replayed >= 1
            await fake.wait_for(bot.is_ready)
            after = await fake.slash(fake.alice, "remix")  # an event after the reconnect
            assert (await after.wait_callback()).type == CallbackType.MODAL

    run(scenario)


def test_followups_fail_once_the_interaction_token_has_expired() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            interaction = await fake.slash(fake.alice, "wait", {"defer_first": True})
            assert (await interaction.wait_callback()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
            fake.advance(15 * 60 + 1)
            bot.release.set()
            [error] = await fake.wait_for(lambda: bot.errors)
            assert (error.status, error.code) == (401, 50027)
            assert interaction.followups == []

    run(scenario)


def test_a_callback_after_three_seconds_is_an_unknown_interaction() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            interaction = await fake.slash(fake.alice, "wait", {"defer_first": False})
            fake.advance(3.5)
            bot.release.set()
            [error] = await fake.wait_for(lambda: bot.errors)
            assert isinstance(error, discord.NotFound) and error.code == 10062
            assert interaction.callback is None

    run(scenario)


def test_unknown_routes_are_recorded() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, run_bot(fake, DemoBot(fake.guild.id)) as bot:
            with pytest.raises(discord.NotFound):
                await bot.http.request(discord.http.Route("GET", "/nothing/{thing_id}", thing_id=1))
            assert [(r.method, r.path) for r in fake.unknown_requests] == [("GET", "/nothing/1")]

    run(scenario)


@pytest.mark.parametrize("compress", ["zlib-stream", None])
def test_gateway_frames_are_a_zlib_stream_when_asked_and_plain_text_otherwise(compress: str | None) -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
            url = fake.gateway_url + (f"?v=10&encoding=json&compress={compress}" if compress else "")
            async with http.ws_connect(url) as ws:
                inflate = zlib.decompressobj()
                frames = []

                async def receive() -> dict:
                    message = await ws.receive()
                    frames.append(message.type)
                    if message.type is aiohttp.WSMsgType.BINARY:
                        assert message.data.endswith(b"\x00\x00\xff\xff")  # each message ends in a sync flush
                        return json.loads(inflate.decompress(message.data))
                    return json.loads(message.data)

                hello = await receive()
                await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 1, "properties": {}}})
                ready = await receive()
                guild = await receive()  # decompressed with the same stream: one context per connection
            assert (hello["op"], ready["t"], guild["t"]) == (10, "READY", "GUILD_CREATE")
            expected = aiohttp.WSMsgType.BINARY if compress else aiohttp.WSMsgType.TEXT
            assert frames == [expected] * 3

    run(scenario)

"""The buttons on results and status messages: persistent `DynamicItem`s whose custom_id holds the
job id, so they keep working after a restart (state comes from the store, no timeout).

Custom ids: `job:<id>:s<strength x 100>`, `job:<id>:reroll`, `job:<id>:remix`, `job:<id>:use`,
`job:<id>:compare`, `job:<id>:delete`, `job:<id>:cancel`. Anyone in the channel may press the
variation, Remix, Use as input and Compare buttons (a channel is a shared workspace); Delete and
Cancel are for the job's owner or members with Manage Messages. Remix and Use as input open the
modals of `cogs.modals`; the new job's result replies to the message pressed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any, ClassVar

import discord
from discord.ext import commands

from bot import store
from bot.compare import comparison
from bot.jobs import Job, JobState
from bot.submit import check_allowed, submit
from cogs.intake_flow import reply_fields, token_fields
from cogs.modals import RemixModal, UseAsInputModal, show_modal
from engine.errors import InputError

if TYPE_CHECKING:
    from bot.client import RestyleBot

log = logging.getLogger(__name__)

STRENGTHS = (0.3, 0.5, 0.7, 0.9)
_ID = r"(?P<job>[A-Za-z0-9_-]{10})"


# --- what the result looks like -----------------------------------------------------------------


def render_embed(job: Job, note: str | None, parent: Job | None = None) -> discord.Embed:
    """The result's embed: prompt, mode, strength, seed, time, who asked, the parent, tips."""
    title = f"{job.mode}{' (fast)' if job.fast else ''} · strength {job.strength:g}"
    embed = discord.Embed(title=title, description=job.prompt or "*no prompt*", colour=discord.Colour.blurple())
    embed.add_field(name="Seed", value=str(job.result_seed))
    total = job.timings.get("total")
    if total is not None:
        embed.add_field(name="Time", value=f"{total:.1f} s")
    embed.add_field(name="Asked by", value=f"<@{job.owner_id}>")
    if parent is not None and parent.result_message_id and parent.guild_id and not parent.ephemeral:
        url = f"https://discord.com/channels/{parent.guild_id}/{parent.channel_id}/{parent.result_message_id}"
        embed.add_field(name="From", value=f"[job `{parent.id}`]({url})")
    elif job.parent_id:
        embed.add_field(name="From", value=f"job `{job.parent_id}`")
    for tip in [*job.warnings, *([note] if note else [])]:
        embed.add_field(name="Tip", value=tip, inline=False)
    embed.set_footer(text=f"job {job.id}")
    return embed


def result_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for strength in STRENGTHS:
        view.add_item(StrengthButton(job.id, strength, current=abs(strength - job.strength) < 1e-6))
    view.add_item(RerollButton(job.id))  # the first row: the same job, another strength or seed
    for button in (RemixButton, UseAsInputButton, CompareButton, DeleteButton):
        view.add_item(button(job.id))
    return view


def running_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job.id))
    return view


# --- helpers the buttons share --------------------------------------------------------------------


async def load_job(interaction: discord.Interaction, job_id: str) -> Job | None:
    bot: RestyleBot = interaction.client  # type: ignore[assignment]
    job = await asyncio.to_thread(store.find_job, bot.db, job_id)
    if job is None:
        await interaction.response.send_message("That job is no longer stored.", ephemeral=True)
    return job


def may_manage(interaction: discord.Interaction, job: Job) -> bool:
    return interaction.user.id == job.owner_id or bool(interaction.permissions.manage_messages)


async def allowed(interaction: discord.Interaction) -> bool:
    """Whether the user may start a job here now; if not, they are told why, privately."""
    bot: RestyleBot = interaction.client  # type: ignore[assignment]
    refusal = await check_allowed(bot, interaction.guild_id, interaction.channel_id or 0, interaction.user.id)
    if refusal:
        await interaction.response.send_message(refusal, ephemeral=True)
    return refusal is None


async def start_variation(interaction: discord.Interaction, parent: Job, **changes: Any) -> None:
    """A new job from `parent`'s source and settings, replying to the message pressed.

    Nothing to download or check again: the parent's inputs passed every check already.
    """
    if not await allowed(interaction):
        return
    bot: RestyleBot = interaction.client  # type: ignore[assignment]
    settings = await bot.guild_settings(interaction.guild_id)
    if parent.ephemeral or not settings.public_results:
        # A private result stays private: the deferred response becomes the status, then the result.
        deferred = await interaction.response.defer(thinking=True, ephemeral=True)
        message_id = deferred.message_id if deferred is not None else None
        if message_id is None:  # older API answers carry no message id
            message_id = (await interaction.original_response()).id
        where = token_fields(interaction, message_id, ephemeral=True)
    else:
        await interaction.response.defer()  # acknowledged; the status message replies to the result
        where = reply_fields(interaction, interaction.message.id if interaction.message else None)
    fields = {
        **where,
        "parent_id": parent.id,
        "kind": "variation",
        "mode": parent.mode,
        "prompt": parent.prompt,
        "strength": parent.strength,
        "seed": parent.result_seed if parent.result_seed is not None else parent.seed,
        "fast": parent.fast,
        "outpaint": parent.outpaint,
        "source_hash": parent.source_hash,
        "mask_hash": parent.mask_hash,
        "style_hash": parent.style_hash,
        "warnings": [w for w in parent.warnings if "strength" not in w],
    }
    await submit(bot, Job(**{**fields, **changes}))


# --- the buttons -----------------------------------------------------------------------------------


class StrengthButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"job:{_ID}:s(?P<strength>\d{{2,3}})"):
    """Re-run the same source, prompt and seed at another strength."""

    def __init__(self, job_id: str, strength: float, *, current: bool = False) -> None:
        self.job_id, self.strength = job_id, strength
        super().__init__(
            discord.ui.Button(
                label=f"{strength:g}",
                style=discord.ButtonStyle.primary if current else discord.ButtonStyle.secondary,
                custom_id=f"job:{job_id}:s{round(strength * 100):02d}",
            )
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["job"], int(match["strength"]) / 100)

    async def callback(self, interaction: discord.Interaction) -> None:
        parent = await load_job(interaction, self.job_id)
        if parent is not None:
            await start_variation(interaction, parent, strength=self.strength)


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=r"(?!)"):
    """A button acting on one job, custom_id `job:<id>:<action>`.

    Subclasses name the action and the look in the class statement, and write `callback`:
    `class RerollButton(JobButton, action="reroll", label="Re-roll", emoji="🎲")`. The base itself
    matches nothing and is never registered.
    """

    action: ClassVar[str]
    button_label: ClassVar[str]
    button_style: ClassVar[discord.ButtonStyle]
    button_emoji: ClassVar[str | None]

    def __init_subclass__(
        cls,
        *,
        action: str,
        label: str,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        emoji: str | None = None,
    ) -> None:
        super().__init_subclass__(template=rf"job:{_ID}:{re.escape(action)}")
        cls.action, cls.button_label, cls.button_style, cls.button_emoji = action, label, style, emoji

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        custom_id = f"job:{job_id}:{self.action}"
        super().__init__(
            discord.ui.Button(label=self.button_label, style=self.button_style, emoji=self.button_emoji, custom_id=custom_id)
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["job"])


class RerollButton(JobButton, action="reroll", label="Re-roll", emoji="🎲"):
    """The same job with a new seed."""

    async def callback(self, interaction: discord.Interaction) -> None:
        parent = await load_job(interaction, self.job_id)
        if parent is not None:
            await start_variation(interaction, parent, kind="reroll", seed=secrets.randbelow(2**32))


class RemixButton(JobButton, action="remix", label="Remix", emoji="🎛️"):
    """A modal with the job's prompt, mode and strength; the new job starts from the same source."""

    async def callback(self, interaction: discord.Interaction) -> None:
        parent = await load_job(interaction, self.job_id)
        if parent is not None and await allowed(interaction):
            await show_modal(interaction, RemixModal(parent, interaction.user.id))


class UseAsInputButton(JobButton, action="use", label="Use as input", emoji="⤵️"):
    """A modal with the job's prompt; the new job starts from this job's result."""

    async def callback(self, interaction: discord.Interaction) -> None:
        parent = await load_job(interaction, self.job_id)
        if parent is None or not await allowed(interaction):
            return
        if parent.result_hash is None:
            await interaction.response.send_message("That job has no result yet.", ephemeral=True)
            return
        bot: RestyleBot = interaction.client  # type: ignore[assignment]
        settings = await bot.guild_settings(interaction.guild_id)
        await show_modal(interaction, UseAsInputModal(parent, interaction.user.id, settings.default_mode))


class CompareButton(JobButton, action="compare", label="Compare", emoji="↔️"):
    """A private reply with the source and the result side by side."""

    async def callback(self, interaction: discord.Interaction) -> None:
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        if job.result_hash is None:
            await interaction.response.send_message("That job has no result yet.", ephemeral=True)
            return
        # Decoding, resizing and encoding two images can take longer than the 3 seconds Discord waits.
        await interaction.response.defer(thinking=True, ephemeral=True)
        bot: RestyleBot = interaction.client  # type: ignore[assignment]
        try:
            upload = await asyncio.to_thread(comparison, bot.config.images_dir, job, interaction.filesize_limit)
        except (store.NotFoundError, InputError):
            await interaction.edit_original_response(
                content="The images of that job are no longer stored, or cannot be read."
            )
            return
        file = discord.File(io.BytesIO(upload.data), filename=upload.filename)
        await interaction.edit_original_response(content=f"Source and result of job `{job.id}`.", attachments=[file])


class DeleteButton(JobButton, action="delete", label="Delete", style=discord.ButtonStyle.danger):
    """Remove the result message (owner, or Manage Messages)."""

    async def callback(self, interaction: discord.Interaction) -> None:
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        if not may_manage(interaction, job):
            await interaction.response.send_message("Only the job's owner or a moderator can delete it.", ephemeral=True)
            return
        await interaction.response.defer()
        if interaction.message is not None:
            await interaction.message.delete()


class CancelButton(JobButton, action="cancel", label="Cancel"):
    """Stop a queued or running job (owner, or Manage Messages)."""

    async def callback(self, interaction: discord.Interaction) -> None:
        job = await load_job(interaction, self.job_id)
        if job is None:
            return
        if not may_manage(interaction, job):
            await interaction.response.send_message("Only the job's owner or a moderator can cancel it.", ephemeral=True)
            return
        bot: RestyleBot = interaction.client  # type: ignore[assignment]
        if job.state not in (JobState.QUEUED, JobState.RUNNING) or not bot.runner.cancel(job.id):
            await interaction.response.send_message("That job has already finished.", ephemeral=True)
            return
        await interaction.response.send_message("Cancelling…", ephemeral=True)


DYNAMIC_ITEMS = (StrengthButton, RerollButton, RemixButton, UseAsInputButton, CompareButton, DeleteButton, CancelButton)


class Buttons(commands.Cog):
    """Registers the persistent buttons and the result's look with delivery."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.delivery.result_view = result_view
        self.bot.delivery.running_view = running_view
        self.bot.delivery.render_embed = render_embed

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)
        self.bot.delivery.result_view = self.bot.delivery.running_view = self.bot.delivery.render_embed = None


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Buttons(bot))

"""The buttons on results and status messages: persistent `DynamicItem`s whose custom_id holds the
job id, so they keep working after a restart (state comes from the store, no timeout).

Custom ids: `job:<id>:s<strength x 100>`, `job:<id>:reroll`, `job:<id>:delete`, `job:<id>:cancel`.
Anyone in the channel may press the variation buttons; Delete and Cancel are for the job's owner
or members with Manage Messages.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot import store
from bot.jobs import Job, JobState
from bot.submit import check_allowed, submit

if TYPE_CHECKING:
    from bot.client import RestyleBot

log = logging.getLogger(__name__)

STRENGTHS = (0.3, 0.5, 0.7, 0.9)
_ID = r"(?P<job>[A-Za-z0-9_-]{10})"


# --- what the result looks like -----------------------------------------------------------------


def render_embed(job: Job, note: str | None) -> discord.Embed:
    """The result's embed: prompt, mode, strength, seed, time, who asked, the parent, tips."""
    title = f"{job.mode}{' (fast)' if job.fast else ''} · strength {job.strength:g}"
    embed = discord.Embed(title=title, description=job.prompt or "*no prompt*", colour=discord.Colour.blurple())
    embed.add_field(name="Seed", value=str(job.result_seed))
    total = job.timings.get("total")
    if total is not None:
        embed.add_field(name="Time", value=f"{total:.1f} s")
    embed.add_field(name="Asked by", value=f"<@{job.owner_id}>")
    if job.parent_id:
        embed.add_field(name="From", value=f"job `{job.parent_id}`")
    for tip in [*job.warnings, *([note] if note else [])]:
        embed.add_field(name="Tip", value=tip, inline=False)
    embed.set_footer(text=f"job {job.id}")
    return embed


def result_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for strength in STRENGTHS:
        view.add_item(StrengthButton(job.id, strength, current=abs(strength - job.strength) < 1e-6))
    view.add_item(RerollButton(job.id))
    view.add_item(DeleteButton(job.id))
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


async def start_variation(interaction: discord.Interaction, parent: Job, **changes: Any) -> None:
    """A new job from `parent`'s source and settings, replying to the message pressed."""
    bot: RestyleBot = interaction.client  # type: ignore[assignment]
    refusal = await check_allowed(bot, interaction.guild_id, interaction.channel_id or 0, interaction.user.id)
    if refusal:
        await interaction.response.send_message(refusal, ephemeral=True)
        return
    await interaction.response.defer()  # acknowledged; the status message replies to the result
    fields = {
        "owner_id": interaction.user.id,
        "guild_id": interaction.guild_id,
        "channel_id": interaction.channel_id,
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
        "ephemeral": False,
        "reply_to_message_id": interaction.message.id if interaction.message else None,
        "upload_limit": interaction.filesize_limit,
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


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"job:{_ID}:reroll"):
    """The same job with a new seed."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(discord.ui.Button(label="Re-roll", emoji="🎲", custom_id=f"job:{job_id}:reroll"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        parent = await load_job(interaction, self.job_id)
        if parent is not None:
            await start_variation(interaction, parent, kind="reroll", seed=secrets.randbelow(2**32))


class DeleteButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"job:{_ID}:delete"):
    """Remove the result message (owner, or Manage Messages)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(label="Delete", style=discord.ButtonStyle.danger, custom_id=f"job:{job_id}:delete")
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["job"])

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


class CancelButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"job:{_ID}:cancel"):
    """Stop a queued or running job (owner, or Manage Messages)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(discord.ui.Button(label="Cancel", custom_id=f"job:{job_id}:cancel"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["job"])

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


DYNAMIC_ITEMS = (StrengthButton, RerollButton, DeleteButton, CancelButton)


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

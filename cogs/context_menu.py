"""The message context menu **Restyle image**: any message with an image becomes a source.

It opens `cogs.modals.ContextRestyleModal` (prompt, mode, strength); the submission queues the job.
On one of the bot's own results the modal starts from that job's prompt, mode and strength, and the
new job records it as its parent. The new result is posted as a reply to the message it came from
(privately instead, in guilds that keep results private).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import store
from bot.jobs import GUILD_MODES
from bot.submit import check_allowed
from cogs.intake_flow import IMAGE_SUFFIXES
from cogs.modals import ContextRestyleModal, show_modal

if TYPE_CHECKING:
    from bot.client import RestyleBot

__all__ = ["MENU_NAME", "ContextMenu", "first_image", "setup"]

MENU_NAME = "Restyle image"


def first_image(message: discord.Message) -> discord.Attachment | None:
    """The message's first image attachment, or None.

    Attachments without a content type (old uploads) count by their file name.
    """
    for attachment in message.attachments:
        content_type = (attachment.content_type or "").split(";")[0]
        if content_type.startswith("image/") or (not content_type and attachment.filename.lower().endswith(IMAGE_SUFFIXES)):
            return attachment
    return None


class ContextMenu(commands.Cog):
    """Adds "Restyle image" to every message's Apps menu."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot
        # A context menu cannot be a method of a cog class (app_commands raises), so the cog builds it
        # and adds it to the tree itself, and takes it off again when unloaded.
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.restyle_image)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def restyle_image(self, interaction: discord.Interaction, message: discord.Message) -> None:
        # Refusals come before the modal, so nobody fills it in for nothing; the modal opens within
        # Discord's 3 seconds (store lookups only, no download).
        attachment = first_image(message)
        if attachment is None:
            await interaction.response.send_message("That message has no image.", ephemeral=True)
            return
        refusal = await check_allowed(self.bot, interaction.guild_id, interaction.channel_id or 0, interaction.user.id)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await show_modal(interaction, await restyle_modal(self.bot, interaction, message, attachment))


async def restyle_modal(
    bot: RestyleBot, interaction: discord.Interaction, message: discord.Message, attachment: discord.Attachment
) -> ContextRestyleModal:
    """The Restyle image modal for ``attachment`` of ``message``, pre-filled from the job that made
    it when it is one of the bot's results, else from the guild's defaults."""
    parent = None
    if bot.user is not None and message.author.id == bot.user.id:  # only the bot posts results
        parent = await asyncio.to_thread(store.find_job_by_result_message, bot.db, message.id)
    settings = await bot.guild_settings(interaction.guild_id)
    if parent is not None:
        # Start from the job that made this result; a fill job's mask belongs to its own source.
        mode = parent.mode if parent.mode in GUILD_MODES else settings.default_mode
        prompt, strength = parent.prompt, parent.strength
    else:
        mode, prompt, strength = settings.default_mode, "", settings.default_strength
    return ContextRestyleModal(attachment, message, interaction.user.id, parent, prompt=prompt, mode=mode, strength=strength)


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(ContextMenu(bot))

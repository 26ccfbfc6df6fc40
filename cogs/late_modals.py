"""Forms submitted after a restart: the Remix, Use as input and Restyle image modals, rebuilt.

discord.py keeps a shown modal in memory only, so a form someone was filling in while the bot
restarted (or for longer than discord.py waits) would be lost on submit: "this interaction failed".
Every one of ours names what it was opened on in its custom id (``job:<id>:remix:<user>``,
``job:<id>:use:<user>``, ``msg:<message id>:restyle:<user>``), so a submission this process never
showed is rebuilt from the store, or the message, and runs as if nothing had happened.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from cogs.buttons import load_job
from cogs.context_menu import first_image, restyle_modal
from cogs.modals import JobModal, RemixModal, UseAsInputModal, submitted_inputs

if TYPE_CHECKING:
    from bot.client import RestyleBot

__all__ = ["LateModals"]

log = logging.getLogger(__name__)

_OURS = re.compile(r"(?P<kind>job|msg):(?P<target>[\w-]+):(?P<action>remix|use|restyle):(?P<user>\d+)")


class LateModals(commands.Cog):
    """Takes the modal submissions that no modal of this process is waiting for."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_modal_submit(self, interaction: discord.Interaction) -> None:
        # Dispatched by RestyleBot.dispatch for every modal submission, known to discord.py or not.
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if self.bot.shown_modals.get(custom_id, 0.0) > time.monotonic():
            return  # shown by this process and still waited for: discord.py runs it
        match = _OURS.fullmatch(custom_id)
        if match is None or int(match["user"]) != interaction.user.id:
            return
        log.info("modal %s submitted after a restart: rebuilt", custom_id)
        modal = await self._rebuild(interaction, match)
        if modal is None:
            return
        inputs = submitted_inputs(interaction.data or {})
        try:
            await modal.submit(
                interaction,
                lambda: modal.parse(inputs.get("prompt") or "", inputs.get("mode") or [], inputs.get("strength") or ""),
            )
        except Exception as exc:
            await modal.on_error(interaction, exc)

    async def _rebuild(self, interaction: discord.Interaction, match: re.Match[str]) -> JobModal | None:
        """The modal as it was shown, or None once the user is told why it cannot be."""
        user_id = interaction.user.id
        if match["kind"] == "job":
            parent = await load_job(interaction, match["target"])
            if parent is None:
                return None
            if match["action"] == "remix":
                return RemixModal(parent, user_id)
            settings = await self.bot.guild_settings(interaction.guild_id)
            return UseAsInputModal(parent, user_id, settings.default_mode)
        message = None
        if isinstance(interaction.channel, discord.abc.Messageable):
            with contextlib.suppress(discord.NotFound, discord.Forbidden):
                message = await interaction.channel.fetch_message(int(match["target"]))
        if message is None:
            await interaction.response.send_message("That message is gone, or I cannot read it.", ephemeral=True)
            return None
        attachment = first_image(message)
        if attachment is None:
            await interaction.response.send_message("That message has no image.", ephemeral=True)
            return None
        return await restyle_modal(self.bot, interaction, message, attachment)


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(LateModals(bot))

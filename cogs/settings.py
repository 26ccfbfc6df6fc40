"""`/settings`: a server's default mode and strength, its channels, its per-user limit and whether
results are public. For members with Manage Server; the store checks every value.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import store
from bot.jobs import GUILD_MODES, GuildSettings

if TYPE_CHECKING:
    from bot.client import RestyleBot
    from bot.store import Database

__all__ = ["MAX_PER_USER_LIMIT", "ChannelOption", "Settings", "apply_changes", "settings_embed"]

#: the highest per-user limit the command offers: more would let one member hold the GPU for hours
MAX_PER_USER_LIMIT = 20

MODE_CHOICES = [app_commands.Choice(name=mode, value=mode) for mode in GUILD_MODES]

#: channels where a slash command can run and a result can be posted
_TALK_CHANNELS = [
    discord.ChannelType.text,
    discord.ChannelType.news,
    discord.ChannelType.voice,
    discord.ChannelType.stage_voice,
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
]


class ChannelOption(app_commands.Transformer):
    """A channel option taken as Discord resolved it.

    Only the id is stored, so there is no cache lookup: discord.py's channel transformers refuse a
    channel missing from the cache, which threads the bot never saw often are.
    """

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return _TALK_CHANNELS

    async def transform(
        self, interaction: discord.Interaction, value: Any, /
    ) -> app_commands.AppCommandChannel | app_commands.AppCommandThread:
        return value


def apply_changes(
    db: Database, guild_id: int, changes: dict[str, Any], *, add_channel: int | None, clear_channels: bool
) -> GuildSettings:
    """Apply `changes` (and the channel list edits) to the guild's settings; the settings after.

    Blocking: run it in a thread. The command adds one channel at a time, appended by the store in
    the same transaction that writes; clearing comes first, so "clear and add #art" leaves only #art.

    :raises ValueError: for a value `store.update_settings` refuses (nothing is written)
    :raises TypeError: likewise, for a value of the wrong type
    """
    if clear_channels:
        changes = {**changes, "allowed_channels": []}
    added = [add_channel] if add_channel is not None else []
    if not changes and not added:
        return store.get_settings(db, guild_id)
    return store.update_settings(db, guild_id, add_channels=added, **changes)


def settings_embed(settings: GuildSettings) -> discord.Embed:
    channels = ", ".join(f"<#{channel}>" for channel in settings.allowed_channels) or "every channel"
    embed = discord.Embed(title="Restyle settings for this server", colour=discord.Colour.blurple())
    embed.add_field(name="Default mode", value=settings.default_mode)
    embed.add_field(name="Default strength", value=f"{settings.default_strength:g}")
    embed.add_field(name="Jobs per member", value=f"{settings.per_user_limit} at once")
    embed.add_field(name="Results", value="public" if settings.public_results else "private (only the asker sees them)")
    embed.add_field(name="Channels", value=channels[:1024], inline=False)
    return embed


class Settings(commands.Cog):
    """`/settings`."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description="Show or change Restyle's settings for this server")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(
        default_mode="the mode /restyle uses when none is given",
        default_strength="the strength /restyle uses when none is given, 0 to 1",
        allowed_channel="add a channel Restyle works in (with none listed, it works everywhere)",
        clear_channels="forget the channel list, so Restyle works in every channel again",
        per_user_limit=f"jobs one member may have queued or running at once, 1 to {MAX_PER_USER_LIMIT}",
        public_results="post results for the channel (true) or only for the asker (false)",
    )
    @app_commands.choices(default_mode=MODE_CHOICES)
    async def settings(
        self,
        interaction: discord.Interaction,
        default_mode: app_commands.Choice[str] | None = None,
        default_strength: float | None = None,
        allowed_channel: app_commands.Transform[
            app_commands.AppCommandChannel | app_commands.AppCommandThread, ChannelOption
        ]
        | None = None,
        clear_channels: bool = False,
        per_user_limit: app_commands.Range[int, 1, MAX_PER_USER_LIMIT] | None = None,
        public_results: bool | None = None,
    ) -> None:
        # 1. Check the caller: server admins can override default_permissions, so it is not enough alone
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            await interaction.response.send_message(
                "Only members with the Manage Server permission can change Restyle's settings.", ephemeral=True
            )
            return

        # 2. Gather what was asked; the store validates every value
        changes: dict[str, Any] = {}
        if default_mode is not None:
            changes["default_mode"] = default_mode.value
        if default_strength is not None:
            changes["default_strength"] = default_strength
        if per_user_limit is not None:
            changes["per_user_limit"] = per_user_limit
        if public_results is not None:
            changes["public_results"] = public_results
        add_channel = allowed_channel.id if allowed_channel is not None else None
        changing = bool(changes) or add_channel is not None or clear_channels

        # 3. Save, or say why not (nothing is written when any value is refused)
        try:
            settings = await asyncio.to_thread(
                apply_changes,
                self.bot.db,
                interaction.guild_id,
                changes,
                add_channel=add_channel,
                clear_channels=clear_channels,
            )
        except (ValueError, TypeError) as exc:
            await interaction.response.send_message(f"Nothing was changed: {exc}.", ephemeral=True)
            return
        self.bot.forget_guild_settings(interaction.guild_id)  # the bot reads settings from memory
        await interaction.response.send_message(
            "Saved." if changing else None, embed=settings_embed(settings), ephemeral=True
        )


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Settings(bot))

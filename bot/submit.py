"""Turning a request into a stored, running job: the checks every entry point shares.

>>> refusal = await check_allowed(bot, guild_id, channel_id, user_id)
>>> job = await submit(bot, new_job(...))
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot import store
from bot.jobs import GuildSettings, Job

if TYPE_CHECKING:
    from bot.client import RestyleBot

__all__ = ["TOKEN_LIFETIME", "channel_refusal", "check_allowed", "limit_refusal", "submit"]

#: Discord's interaction tokens live this long after the interaction.
TOKEN_LIFETIME = 15 * 60


def channel_refusal(settings: GuildSettings, channel_id: int) -> str | None:
    """Why jobs may not start in this channel, or None. Needs no I/O: checked before acknowledging."""
    if settings.allowed_channels and channel_id not in settings.allowed_channels:
        channels = ", ".join(f"<#{c}>" for c in settings.allowed_channels)
        return f"Restyle is not enabled in this channel; use {channels}."
    return None


async def limit_refusal(bot: RestyleBot, settings: GuildSettings, user_id: int) -> str | None:
    """Why this user may not start another job now (their per-user limit), or None."""
    active = await asyncio.to_thread(store.active_count, bot.db, user_id)
    if active >= settings.per_user_limit:
        limit = settings.per_user_limit
        return f"You already have {active} jobs queued or running (the limit is {limit}); wait for one to finish."
    return None


async def check_allowed(bot: RestyleBot, guild_id: int | None, channel_id: int, user_id: int) -> str | None:
    """Why this user may not start a job here now, or None when they may."""
    settings = await bot.guild_settings(guild_id)
    return channel_refusal(settings, channel_id) or await limit_refusal(bot, settings, user_id)


async def submit(bot: RestyleBot, job: Job) -> Job:
    """Store the job, then start it on the engine."""
    stored = await asyncio.to_thread(store.create_job, bot.db, job)
    await bot.runner.start(stored)
    return stored

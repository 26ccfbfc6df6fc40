"""Pointing a real discord.py client at a FakeDiscord, and running a bot against it in a test.

discord.py has two class-level addresses: ``discord.http.Route.BASE`` for REST (webhooks and
interaction callbacks included) and ``DiscordWebSocket.DEFAULT_GATEWAY``. A plain ``Bot`` never asks
``GET /gateway/bot``, so swapping those two is enough; attachments are fetched from the absolute
URLs in their payloads, which the fake serves itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import discord.http
import discord.webhook.async_
import yarl
from discord.gateway import DiscordWebSocket

if TYPE_CHECKING:
    from .server import FakeDiscord

__all__ = ["fast_discord_retries", "point_discord_py_at", "run_bot"]

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.contextmanager
def point_discord_py_at(fake: FakeDiscord) -> Iterator[None]:
    """Send every discord.py client in this process to ``fake`` (REST and gateway), restoring the
    real addresses afterwards."""
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@contextlib.asynccontextmanager
async def run_bot(fake: FakeDiscord, bot: ClientT, *, timeout: float = 10.0) -> AsyncIterator[ClientT]:
    """Start ``bot`` against ``fake``, wait until it is ready (guilds cached), and close it on the way
    out. A bot that fails to start, or dies while running, raises its own error here.

    discord.py waits 5 seconds before identifying again after an invalidated session
    (``Client.before_identify_hook``); a test bot can override that hook to skip the wait."""
    with point_discord_py_at(fake):
        task = asyncio.create_task(bot.start(fake.token), name="fakediscord-bot")
        try:
            await _until_ready(bot, task, timeout)
            yield bot
        finally:
            await bot.close()
            await _join(task, timeout)


async def _until_ready(bot: discord.Client, task: asyncio.Task[None], timeout: float) -> None:
    # Polling, because wait_until_ready() refuses to run before login has created its event.
    deadline = asyncio.get_running_loop().time() + timeout
    while not bot.is_ready():
        if task.done():
            raise RuntimeError("the bot stopped before it was ready")  # _join raises the reason
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the bot was not ready within {timeout}s")
        await asyncio.sleep(0.01)


async def _join(task: asyncio.Task[None], timeout: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        raise TimeoutError(f"the bot did not stop within {timeout}s of close()")
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


class _ScaledAsyncio(types.ModuleType):
    """``asyncio`` with every ``sleep`` shortened by ``scale``; everything else is the real module."""

    def __init__(self, scale: float) -> None:
        super().__init__("asyncio")
        self._scale = scale

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(delay * self._scale, result)


@contextlib.contextmanager
def fast_discord_retries(scale: float = 0.01) -> Iterator[None]:
    """Shorten discord.py's HTTP back-off sleeps (1, 3, 5, 7, 9 seconds after a 5xx; ``retry_after``
    after a 429) by ``scale``, so a test of "five 500s, then an error" takes a fraction of a second.
    Patches the ``asyncio`` name inside ``discord.http`` and ``discord.webhook.async_`` only."""
    modules = (discord.http, discord.webhook.async_)
    for module in modules:
        module.asyncio = _ScaledAsyncio(scale)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in modules:
            module.asyncio = asyncio  # type: ignore[attr-defined]

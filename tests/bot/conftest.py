"""Helpers for bot tests: the real RestyleBot on the tiny engine against the fake Discord."""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from bot import store
from bot.client import RestyleBot
from bot.config import BotConfig
from engine.settings import EngineSettings
from engine.worker import Engine
from tests.conftest import ASSETS
from tests.fakediscord import FakeDiscord, run_bot

COFFEE = (ASSETS / "coffee.jpg").read_bytes()


def make_bot(fake: FakeDiscord, data_dir: Path, **engine_changes: object) -> RestyleBot:
    config = BotConfig(
        discord_token=fake.token,
        data_dir=data_dir,
        guild_ids=(fake.guild.id,),
        engine=EngineSettings(preset="tiny", device="cpu").with_(**engine_changes),
    )
    db = store.open_db(config.db_path)
    return RestyleBot(config, db=db, engine=Engine.create(config.engine), guild_ready_timeout=0.05)


@asynccontextmanager
async def running_bot(fake: FakeDiscord, data_dir: Path, **engine_changes: object):
    bot = make_bot(fake, data_dir, **engine_changes)
    async with run_bot(fake, bot, timeout=30):
        await bot.resumed.wait()
        yield bot


def run(coro, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def delivered(interaction, db=None):
    """The interaction's original message once it shows a result (and, given `db`, the job is DELIVERED)."""
    original = interaction.original
    if original is None or not original.attachments:
        return None
    if db is not None and not any(j.result_message_id == original.id for j in store.recent_jobs(db, limit=50)):
        return None
    return original


def gate_renders(bot) -> threading.Event:
    """Hold the GPU worker before each render until the returned event is set (a busy GPU)."""
    gate = threading.Event()
    renderer = bot.engine.renderers[0]
    real = renderer.render

    def held(request, **kwargs):
        assert gate.wait(60), "the test never released the render"
        return real(request, **kwargs)

    renderer.render = held
    return gate

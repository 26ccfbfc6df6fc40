"""Running the real bot as a process (`python -m bot`) against a fake Discord, for tests and benches."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakediscord import FakeDiscord

__all__ = ["bot_env", "start_bot_process"]


def bot_env(fake: FakeDiscord, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a bot on the tiny preset pointed at `fake`; `settings` add RESTYLE_* values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RESTYLE_"))}
    env.update(
        DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        RESTYLE_PRESET="tiny",
        RESTYLE_DEVICE="cpu",
        RESTYLE_DATA_DIR=str(data_dir),
        RESTYLE_GUILD_IDS=str(fake.guild.id),
        TRANSFORMERS_VERBOSITY="error",
        **settings,
    )
    return env


async def start_bot_process(fake: FakeDiscord, data_dir: Path, **settings: str) -> asyncio.subprocess.Process:
    """Start `python -m bot` (working folder `data_dir`, so no developer .env is read); return once it
    has connected to the gateway, its commands synced."""
    connected = fake.gateway_stats.identifies + fake.gateway_stats.resumes
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=bot_env(fake, data_dir, **settings),
        cwd=data_dir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await fake.wait_for(
        lambda: fake.commands(fake.guild) and fake.gateway_stats.identifies + fake.gateway_stats.resumes > connected,
        timeout=120,
    )
    return process

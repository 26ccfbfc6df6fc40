"""`python -m bot` (also installed as `restyle-bot`): run Restyle's Discord bot."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import BotConfig

__all__ = ["main"]


def main() -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.config import ConfigError, load_config
    from engine.errors import InputError

    try:
        config = load_config()
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(config))


async def run(config: BotConfig) -> int:
    # Imported here: torch and diffusers load behind these, after the configuration is known to be good.
    import discord

    from bot import store
    from bot.client import RestyleBot
    from bot.discord_target import point_at
    from engine.worker import Engine

    point_at(config.api_base, config.gateway_url)
    db = await asyncio.to_thread(store.open_db, config.db_path)
    engine = Engine.create(config.engine)
    # What start-up made (modules of torch, diffusers, transformers) lives as long as the process.
    # Frozen, it is left out of full garbage collections, which otherwise walk it all (about 200 ms
    # here, bench/ack.py) with the event loop stopped: every acknowledgement due would wait.
    gc.freeze()
    async with RestyleBot(config, db=db, engine=engine) as bot:
        try:
            await bot.start(config.discord_token)
        except discord.LoginFailure:
            logging.getLogger("bot").error("Discord refused the token: check DISCORD_TOKEN")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

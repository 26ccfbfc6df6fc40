"""The bot: holds references (config, database, engine, runner, delivery), not logic.

>>> bot = RestyleBot(config, db=store.open_db(config.db_path), engine=Engine.create(config.engine))
>>> await bot.start(config.discord_token)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import aiohttp
import discord
from discord.ext import commands

from bot import store
from bot.ack_first import AckFirst
from bot.config import BotConfig
from bot.delivery import Delivery
from bot.jobs import GuildSettings
from bot.runner import JobRunner
from engine.worker import Engine

if TYPE_CHECKING:
    from bot.store import Database

__all__ = ["INITIAL_EXTENSIONS", "RestyleBot"]

log = logging.getLogger(__name__)

INITIAL_EXTENSIONS = (
    "cogs.restyle",
    "cogs.edits",
    "cogs.context_menu",
    "cogs.buttons",
    "cogs.late_modals",
    "cogs.info",
    "cogs.settings",
)


class RestyleBot(commands.Bot):
    """Restyle's Discord client. Cogs do Discord; the runner, store and engine do the rest."""

    config: BotConfig
    db: Database
    engine: Engine
    delivery: Delivery
    runner: JobRunner
    downloads: aiohttp.ClientSession | None = None

    def __init__(self, config: BotConfig, *, db: Database, engine: Engine, **options: object) -> None:
        # Interactions come whatever the intents; messages, typing and reactions would only cost
        # the event loop time it owes acknowledgements.
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options)
        self.config = config
        self.db = db
        self.engine = engine
        self.delivery = Delivery(self, db, config.images_dir)
        self.runner = JobRunner(engine, db, config.images_dir, self.delivery)
        self.resumed = asyncio.Event()
        self.acks = AckFirst(on_busy=engine.hold, on_quiet=engine.release)
        self._guild_settings: dict[int, GuildSettings] = {}
        #: custom ids of the modals this process showed, and until when discord.py keeps each
        self.shown_modals: dict[str, float] = {}

    async def guild_settings(self, guild_id: int | None) -> GuildSettings:
        """A guild's settings, from memory after the first read: read before every acknowledgement."""
        key = guild_id or 0
        if key not in self._guild_settings:
            self._guild_settings[key] = await asyncio.to_thread(store.get_settings, self.db, key)
        return self._guild_settings[key]

    def forget_guild_settings(self, guild_id: int | None) -> None:
        """Drop the remembered settings after a change, so the next read sees it."""
        self._guild_settings.pop(guild_id or 0, None)

    def dispatch(self, event_name: str, /, *args: object, **kwargs: object) -> None:
        # Called as the gateway event is parsed, before any handler runs: the earliest moment
        # an interaction can be counted as waiting for its acknowledgement.
        if event_name == "interaction":
            interaction = cast(discord.Interaction, args[0])
            self.acks.arrived(interaction)
            if interaction.type is discord.InteractionType.modal_submit:
                # on_modal_submit (cogs/late_modals.py): only these, so a burst of commands does not
                # start a listener task per interaction for nothing.
                super().dispatch("modal_submit", interaction)
        super().dispatch(event_name, *args, **kwargs)

    async def setup_hook(self) -> None:
        # One session for attachment downloads: a new one per download costs a connection set-up.
        self.downloads = aiohttp.ClientSession()
        for extension in INITIAL_EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("failed to load extension %s", extension)
        await self._sync_commands()
        self.engine.start()
        # Resume once connected: deliveries need the REST client, which is ready after login.
        self._resume_task = asyncio.create_task(self._resume(), name="resume-jobs")

    async def _sync_commands(self) -> None:
        if self.config.guild_ids:
            for guild_id in self.config.guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def _resume(self) -> None:
        try:
            await self.runner.resume()
        except Exception:
            log.exception("resuming stored jobs failed")
        finally:
            self.resumed.set()

    async def close(self) -> None:
        self.acks.close()
        await self.runner.close()
        if self.downloads is not None:
            await self.downloads.close()
        await self.engine.close()
        await super().close()

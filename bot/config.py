"""Bot configuration, parsed once from the environment and an optional `.env` file.

    >>> config = load_config()                    # os.environ, then ./.env for what is unset
    >>> config = load_config({"DISCORD_TOKEN": "...", "RESTYLE_PRESET": "tiny"}, dotenv=None)

The Discord token is kept out of `repr` and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import EngineSettings

__all__ = ["INVITE_URL", "BotConfig", "ConfigError", "load_config", "read_dotenv"]

#: Scopes `bot` and `applications.commands`; permissions: view channels, send messages, embed links,
#: attach files, read message history, use application commands (2147601408).
INVITE_URL = (
    "https://discord.com/oauth2/authorize?client_id=YOUR_APPLICATION_ID"
    "&scope=bot+applications.commands&permissions=2147601408"
)

MISSING_TOKEN = (
    "DISCORD_TOKEN is not set. Create an application at https://discord.com/developers/applications, "
    "add a bot to it (Bot -> Reset Token) and put the token in the environment or in a .env file as "
    "DISCORD_TOKEN=... Then invite the bot with the bot and applications.commands scopes: " + INVITE_URL
)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class BotConfig:
    """Everything the bot reads at start-up.

    :param discord_token: the bot token; never logged
    :param data_dir: SQLite database and images (RESTYLE_DATA_DIR, default ./data)
    :param guild_ids: guilds to sync commands to at once (RESTYLE_GUILD_IDS, comma-separated);
        without them commands are synced globally, which Discord may take a while to show
    :param api_base: a Discord-compatible REST base URL (DISCORD_API_BASE), for tests
    :param gateway_url: a Discord-compatible gateway URL (DISCORD_GATEWAY_URL), for tests
    """

    discord_token: str = field(repr=False)
    data_dir: Path = Path("data")
    guild_ids: tuple[int, ...] = ()
    api_base: str | None = None
    gateway_url: str | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "restyle.db"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; blank lines, comments and `export ` prefixes are allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_config(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> BotConfig:
    """The configuration from `environ` (default os.environ), with `dotenv` filling what is unset."""
    env = dict(read_dotenv(dotenv)) if dotenv is not None else {}
    env.update(os.environ if environ is None else environ)
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise ConfigError(MISSING_TOKEN)
    raw_ids = env.get("RESTYLE_GUILD_IDS", "")
    try:
        guild_ids = tuple(int(part) for part in raw_ids.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"RESTYLE_GUILD_IDS must be guild ids separated by commas, got {raw_ids!r}") from None
    return BotConfig(
        discord_token=token,
        data_dir=Path(env.get("RESTYLE_DATA_DIR") or "data"),
        guild_ids=guild_ids,
        api_base=env.get("DISCORD_API_BASE") or None,
        gateway_url=env.get("DISCORD_GATEWAY_URL") or None,
        engine=EngineSettings.from_env(env),
    )

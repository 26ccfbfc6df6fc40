"""Configuration: environment and .env, a clear message without a token, no secret in repr or logs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import ConfigError, load_config, read_dotenv


def test_environment_values(tmp_path):
    config = load_config(
        {
            "DISCORD_TOKEN": "abc.def.ghi",
            "RESTYLE_PRESET": "tiny",
            "RESTYLE_DATA_DIR": str(tmp_path),
            "RESTYLE_GUILD_IDS": "1, 2",
            "DISCORD_API_BASE": "http://127.0.0.1:1/api/v10",
        },
        dotenv=None,
    )
    assert config.guild_ids == (1, 2)
    assert config.engine.preset == "tiny"
    assert config.db_path == tmp_path / "restyle.db"
    assert config.api_base == "http://127.0.0.1:1/api/v10"
    assert "abc.def.ghi" not in repr(config)


def test_dotenv_fills_what_the_environment_leaves_unset(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nexport DISCORD_TOKEN="from-file"\nRESTYLE_PRESET=tiny\n\n')
    assert read_dotenv(env_file) == {"DISCORD_TOKEN": "from-file", "RESTYLE_PRESET": "tiny"}
    config = load_config({"RESTYLE_PRESET": "flux"}, dotenv=env_file)
    assert config.discord_token == "from-file" and config.engine.preset == "flux"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "t", "RESTYLE_GUILD_IDS": "abc"}, "RESTYLE_GUILD_IDS must be guild ids"),
    ],
)
def test_bad_configuration(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, dotenv=None)


def test_bad_dotenv_line(tmp_path):
    (tmp_path / ".env").write_text("NOT A SETTING\n")
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        read_dotenv(tmp_path / ".env")


def test_python_m_bot_without_a_token_explains_how_to_get_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RESTYLE_"))}
    done = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr
    assert "applications.commands" in done.stderr and "Traceback" not in done.stderr

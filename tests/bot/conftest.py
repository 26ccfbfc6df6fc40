"""Helpers for bot tests: the real RestyleBot on the tiny engine against the fake Discord."""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from bot import store
from bot.client import RestyleBot
from bot.config import BotConfig
from bot.jobs import JobState
from engine.settings import EngineSettings
from engine.worker import Engine
from tests.conftest import ASSETS
from tests.fakediscord import CallbackType, FakeDiscord, run_bot

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


def private_text(interaction) -> str | None:
    """What the bot told the user privately: an ephemeral reply, or an ephemeral followup after deferring."""
    if interaction.callback and interaction.callback.type == CallbackType.CHANNEL_MESSAGE:
        return interaction.callback.data.get("content")
    for followup in interaction.followups:
        if followup.ephemeral:
            return followup.content
    return None


def modal_inputs(interaction) -> dict[str, object]:
    """The modal the bot showed in answer to `interaction`: {custom_id: pre-filled text, or the selected options}."""
    assert interaction.callback.type == CallbackType.MODAL, interaction.callback
    inputs: dict[str, object] = {}
    for label in interaction.callback.data["components"]:
        component = label.get("component") or label["components"][0]
        if "options" in component:
            inputs[component["custom_id"]] = [o["value"] for o in component["options"] if o.get("default")]
        else:
            inputs[component["custom_id"]] = component.get("value")
    return inputs


async def restyled(fake: FakeDiscord, bot: RestyleBot, user=None, **options):
    """Run /restyle on the coffee photo and wait for its result: (the result message, its job)."""
    image = fake.add_attachment(COFFEE, "coffee.jpg", "image/jpeg")
    interaction = await fake.slash(user or fake.alice, "restyle", {"image": image, "prompt": "a cup of tea", **options})
    result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
    return result, store.find_job_by_result_message(bot.db, result.id)


def delivered_child(db, parent_id: str):
    """The first job made from `parent_id` once its result is posted, else None."""
    return next((j for j in store.children(db, parent_id) if j.state is JobState.DELIVERED), None)

"""`/restyle`: the whole-image command. The shared steps (checks, defer, download, store, submit) are
`cogs.intake_flow.intake_and_submit`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import GUILD_MODES
from cogs.intake_flow import Ask, intake_and_submit

if TYPE_CHECKING:
    from bot.client import RestyleBot

__all__ = ["RESTYLE_MODES", "Restyle", "setup"]

# fill needs a mask or padding, which /inpaint and /outpaint ask for
RESTYLE_MODES = [app_commands.Choice(name=m, value=m) for m in GUILD_MODES]


class Restyle(commands.Cog):
    """/restyle: a source image, a prompt, a mode and a strength."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    @app_commands.command(name="restyle", description="Restyle an image with FLUX.1")
    @app_commands.describe(
        image="the source image",
        prompt="what to make of it",
        mode="redux (variations), canny (keeps edges), depth (keeps 3-D structure), kontext (edits)",
        strength="0 keeps the source, 1 lets the prompt take over (default 0.5)",
        seed="the same seed gives the same result",
        style="canny/depth: take the look from this image",
        fast="redux on FLUX.1-schnell, about 4 steps",
    )
    @app_commands.choices(mode=RESTYLE_MODES)
    async def restyle(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str = "",
        mode: app_commands.Choice[str] | None = None,
        strength: float | None = None,
        seed: app_commands.Range[int, 0, 2**53] | None = None,
        style: discord.Attachment | None = None,
        fast: bool = False,
    ) -> None:
        ask = Ask(
            kind="restyle",
            image=image,
            prompt=prompt,
            mode=mode.value if mode else None,
            strength=strength,
            seed=seed,
            fast=fast,
            style=style,
        )
        await intake_and_submit(self.bot, interaction, ask)


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Restyle(bot))

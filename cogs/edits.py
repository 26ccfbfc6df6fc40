"""`/inpaint`, `/outpaint` and `/edit`: the fill and Kontext modes, each with the options it needs.

Each command only says what it asks for; `cogs.intake_flow.intake_and_submit` checks it, defers,
downloads, stores and starts the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.intake_flow import Ask, intake_and_submit
from engine.errors import InputError
from engine.preprocess import mask_from_alpha

if TYPE_CHECKING:
    from bot.client import RestyleBot
    from engine.types import GenerationRequest

__all__ = ["INPAINT_STRENGTH", "OUTPAINT_STRENGTH", "Edits", "setup"]

#: /inpaint's default. FLUX.1-Fill paints the masked area afresh at 1; lower values keep some of
#: what lies under the mask, which for a transparent PNG is flat white (the engine flattens it).
INPAINT_STRENGTH = 1.0
#: /outpaint's only strength. The new area starts as a mirrored, blurred copy of the source's edge;
#: below 1 that blur and the mirrored shapes survive into the result, so there is no option for it.
OUTPAINT_STRENGTH = 1.0

DIRECTIONS = [app_commands.Choice(name=d, value=d) for d in ("left", "right", "up", "down", "all")]
AMOUNTS = [app_commands.Choice(name=a, value=a) for a in ("25%", "50%", "100%")]


def check_inpaint_mask(request: GenerationRequest) -> None:
    """Refuse an inpaint with nothing to repaint, in words about /inpaint's own options.

    The engine's own message also offers outpaint padding, which /inpaint does not take.
    """
    if request.mask is None and mask_from_alpha(request.image) is None:
        raise InputError(
            "inpainting needs a mask: attach one as `mask` (white = repaint, the image's size), "
            "or use a PNG whose transparent pixels mark the area to repaint"
        )


class Edits(commands.Cog):
    """The commands that change part of an image, or follow an instruction."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    @app_commands.command(name="inpaint", description="Repaint part of an image (FLUX.1 Fill)")
    @app_commands.describe(
        image="the source; a PNG's transparent pixels mark the area to repaint when no mask is given",
        prompt="what to paint there",
        mask="white = repaint, black = keep; the image's size",
        strength="how much of the masked area is repainted (default 1: all of it)",
    )
    async def inpaint(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None = None,
        strength: float | None = None,
    ) -> None:
        ask = Ask(
            kind="inpaint",
            image=image,
            prompt=prompt,
            mode="fill",
            strength=INPAINT_STRENGTH if strength is None else strength,
            mask=mask,
            check=check_inpaint_mask,
        )
        await intake_and_submit(self.bot, interaction, ask)

    @app_commands.command(name="outpaint", description="Extend an image past its borders (FLUX.1 Fill)")
    @app_commands.describe(
        image="the source",
        direction="which side to extend; all = every side",
        prompt="what the wider scene shows",
        amount="how far, as a share of the image's width or height (default 50%)",
    )
    @app_commands.choices(direction=DIRECTIONS, amount=AMOUNTS)
    async def outpaint(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        direction: app_commands.Choice[str],
        prompt: str = "",
        amount: app_commands.Choice[str] | None = None,
    ) -> None:
        padding = f"{direction.value}={amount.value if amount else '50%'}"
        ask = Ask(kind="outpaint", image=image, prompt=prompt, mode="fill", strength=OUTPAINT_STRENGTH, outpaint=padding)
        await intake_and_submit(self.bot, interaction, ask)

    @app_commands.command(name="edit", description="Edit an image by instruction (FLUX.1 Kontext)")
    @app_commands.describe(
        image="the source",
        instruction='what to change, e.g. "make her hair red"',
        strength="how far the edit may move from the source (default: the server's)",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        instruction: str,
        strength: float | None = None,
    ) -> None:
        ask = Ask(kind="edit", image=image, prompt=instruction, mode="kontext", strength=strength)
        await intake_and_submit(self.bot, interaction, ask)


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Edits(bot))

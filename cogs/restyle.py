"""`/restyle`: check, defer within 3 seconds, store the job, let the runner take it from there."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import store
from bot.intake import fetch_image
from bot.jobs import Job
from bot.submit import TOKEN_LIFETIME, check_allowed, submit
from engine.errors import InputError
from engine.render import MAX_PROMPT_CHARS, check_request
from engine.types import GenerationRequest, Mode

if TYPE_CHECKING:
    from bot.client import RestyleBot

log = logging.getLogger(__name__)

RESTYLE_MODES = [app_commands.Choice(name=m, value=m) for m in ("redux", "canny", "depth", "kontext")]


def check_text_inputs(prompt: str, strength: float | None) -> None:
    """The checks that need no download, run before deferring."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"the prompt is {len(prompt)} characters, over the {MAX_PROMPT_CHARS} limit")
    if strength is not None and not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength:g}")


class Restyle(commands.Cog):
    """The slash commands that start jobs."""

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
        # 1. Cheap checks, answered at once and privately
        try:
            check_text_inputs(prompt, strength)
        except InputError as exc:
            await interaction.response.send_message(sentence(str(exc)), ephemeral=True)
            return
        refusal = await check_allowed(self.bot, interaction.guild_id, interaction.channel_id or 0, interaction.user.id)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        settings = await asyncio.to_thread(store.get_settings, self.bot.db, interaction.guild_id or 0)

        # 2. Acknowledge within 3 seconds, whatever the queue holds
        ephemeral = not settings.public_results
        deferred = await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        status_message_id = deferred.message_id if deferred is not None else None

        # 3. Download and check the images, then the whole request
        limits = self.bot.config.engine.limits
        chosen_mode = mode.value if mode else settings.default_mode
        chosen_strength = settings.default_strength if strength is None else strength
        try:
            source_bytes, source = await fetch_image(image, limits, label="image")
            style_bytes, style_image = (None, None)
            if style is not None:
                style_bytes, style_image = await fetch_image(style, limits, label="style image")
            request = GenerationRequest(
                image=source,
                prompt=prompt,
                mode=Mode.parse(chosen_mode),
                strength=chosen_strength,
                seed=seed,
                fast=fast,
                style=style_image,
            )
            await asyncio.to_thread(check_request, request)
        except InputError as exc:
            await self._refuse_after_defer(interaction, str(exc))
            return

        # 4. Store the images and the job, and start it
        source_hash = await asyncio.to_thread(store.put_image, self.bot.config.images_dir, source_bytes, _suffix(image))
        style_hash = None
        if style_bytes is not None and style is not None:
            style_hash = await asyncio.to_thread(store.put_image, self.bot.config.images_dir, style_bytes, _suffix(style))
        if status_message_id is None:  # older API answers carry no message id
            status_message_id = (await interaction.original_response()).id
        job = Job(
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            parent_id=None,
            kind="restyle",
            mode=chosen_mode,
            prompt=prompt,
            strength=chosen_strength,
            seed=seed,
            fast=fast,
            source_hash=source_hash,
            style_hash=style_hash,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            token_expires_at=interaction.created_at.timestamp() + TOKEN_LIFETIME,
            ephemeral=ephemeral,
            status_message_id=status_message_id,
            upload_limit=interaction.filesize_limit,
            warnings=tips(source.size, chosen_mode, chosen_strength, prompt),
        )
        await submit(self.bot, job)

    async def _refuse_after_defer(self, interaction: discord.Interaction, message: str) -> None:
        # The deferred "thinking" message may be public: replace it with a private note.
        await interaction.followup.send(sentence(message), ephemeral=True)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.info("could not remove the deferred response of interaction %s", interaction.id)


def sentence(message: str) -> str:
    """An error message as a sentence: capitalised, one full stop."""
    message = message.strip().rstrip(".")
    return f"{message[:1].upper()}{message[1:]}."


def _suffix(attachment: discord.Attachment) -> str:
    name = attachment.filename.lower()
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"):
        if name.endswith(suffix):
            return suffix
    return ".img"


def tips(size: tuple[int, int], mode: str, strength: float, prompt: str) -> list[str]:
    """Advice shown with the result; never blocks the job."""
    found = []
    if min(size) < 512:
        found.append("Results will be vague: use a larger source (512 px or more on the shorter side).")
    if mode == "redux" and strength > 0.8:
        found.append("The composition barely survives: try depth or canny at a medium strength.")
    if len(prompt.strip()) < 8:
        found.append("Even a short description makes results more consistent.")
    return found


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Restyle(bot))

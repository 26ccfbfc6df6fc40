"""The recipe every entry point follows to start a job, written once.

A command, the context menu or a modal says what it wants in an `Ask`; `intake_and_submit` does the
rest: cheap checks, channel and per-user limits, defer within 3 seconds, download (or load from the
store) the images, check the whole request as the engine will, store the images and the job, start it.

    >>> ask = Ask(kind="edit", image=attachment, prompt="make it snow", mode="kontext")
    >>> job = await intake_and_submit(bot, interaction, ask)  # None: the user was told why not
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import discord

from bot import store
from bot.intake import fetch_image
from bot.jobs import Job
from bot.submit import TOKEN_LIFETIME, channel_refusal, limit_refusal, submit
from engine.errors import InputError
from engine.images import ImageLimits, load_image
from engine.render import MAX_PROMPT_CHARS, check_request
from engine.types import GenerationRequest, Mode, Outpaint

if TYPE_CHECKING:
    from PIL import Image

    from bot.client import RestyleBot

__all__ = [
    "IMAGE_SUFFIXES",
    "Ask",
    "ImageInput",
    "check_text_inputs",
    "intake_and_submit",
    "origin",
    "refuse_after_defer",
    "reply_fields",
    "sentence",
    "tips",
    "token_fields",
]

log = logging.getLogger(__name__)

#: an attachment to download, or the sha256 digest of an image already in the store (a parent job's)
ImageInput = discord.Attachment | str

#: file names Discord may give an image attachment
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True, kw_only=True)
class Ask:
    """What one entry point asks for; who asked and where comes from the interaction.

    :param kind: how the job is made, one of `bot.jobs.KINDS`
    :param image: the source
    :param prompt: the prompt, or the instruction for kontext
    :param mode: the engine mode; None for the guild's default
    :param strength: 0..1; None for the guild's default
    :param seed: None for a random one
    :param fast: redux on FLUX.1-schnell
    :param mask: the inpainting mask (fill)
    :param style: the style image (canny, depth)
    :param outpaint: the padding, e.g. "right=50%" (fill)
    :param parent_id: the job this one comes from (its lineage)
    :param reply_to_message_id: the message the result should reply to when it is posted to the channel
    :param check: an extra check of the request, run in a thread before the engine's; raises InputError
    """

    kind: str
    image: ImageInput
    prompt: str = ""
    mode: str | None = None
    strength: float | None = None
    seed: int | None = None
    fast: bool = False
    mask: ImageInput | None = None
    style: ImageInput | None = None
    outpaint: str | None = None
    parent_id: str | None = None
    reply_to_message_id: int | None = None
    check: Callable[[GenerationRequest], None] | None = None


class _Loaded(NamedTuple):
    image: Image.Image
    #: the stored image's digest; None for a download, which is stored only once every check passed
    digest: str | None
    data: bytes | None
    suffix: str


# --- the recipe -----------------------------------------------------------------------------------


async def intake_and_submit(bot: RestyleBot, interaction: discord.Interaction, ask: Ask) -> Job | None:
    """Check `ask`, acknowledge the interaction, store the job and start it.

    Refusals are private sentences, and nothing is stored unless every check passed. A job made
    from a message (a button's modal, or the context menu's) posts its status and result to the
    channel as a reply to that message, where the whole channel can take it further; otherwise,
    and in guilds that keep results private, the deferred response becomes the status message and
    then the result.

    :returns: the stored job, or None when the user was told why not
    """
    # 1. Cheap checks, answered at once and privately
    try:
        check_text_inputs(ask.prompt, ask.strength, ask.mode)
    except InputError as exc:
        await interaction.response.send_message(sentence(str(exc)), ephemeral=True)
        return None
    # No waiting on threads or the database before the acknowledgement: settings come from memory.
    settings = await bot.guild_settings(interaction.guild_id)
    refusal = channel_refusal(settings, interaction.channel_id or 0)
    if refusal:
        await interaction.response.send_message(refusal, ephemeral=True)
        return None

    # 2. Acknowledge within 3 seconds, whatever the queue holds or the downloads take
    pressed = interaction.message  # a button, or a modal a button opened
    reply_to = ask.reply_to_message_id or (pressed.id if pressed else None)
    in_channel = reply_to is not None and settings.public_results
    # Pressed on a result, there is nothing to show yet: the status message will reply to it. Then
    # the interaction's "original response" is that result, which must never be edited or deleted.
    quiet = in_channel and pressed is not None
    if quiet:
        deferred = await interaction.response.defer()
    else:  # private while checking when the result goes to the channel
        deferred = await interaction.response.defer(thinking=True, ephemeral=in_channel or not settings.public_results)

    await bot.acks.settled(interaction)  # a burst's acknowledgements before its downloads
    refusal = await limit_refusal(bot, settings, interaction.user.id)
    if refusal:
        await refuse_after_defer(interaction, refusal, keep_original=quiet)
        return None

    # 3. Load the images, then check the whole request as the engine will
    mode = ask.mode or settings.default_mode
    strength = settings.default_strength if ask.strength is None else ask.strength
    try:
        source = await _load(bot, ask.image, "image")
        mask = await _load(bot, ask.mask, "mask") if ask.mask is not None else None
        style = await _load(bot, ask.style, "style image") if ask.style is not None else None
        request = GenerationRequest(
            image=source.image,
            prompt=ask.prompt,
            mode=Mode.parse(mode),
            strength=strength,
            seed=ask.seed,
            fast=ask.fast,
            mask=mask.image if mask else None,
            outpaint=Outpaint.parse(ask.outpaint) if ask.outpaint else None,
            style=style.image if style else None,
        )
        await asyncio.to_thread(_check, request, ask.check)
    except InputError as exc:
        await refuse_after_defer(interaction, str(exc), keep_original=quiet)
        return None

    # 4. Store the images and the job, and start it
    if in_channel:
        delivery = reply_fields(interaction, reply_to)
    else:
        status_message_id = deferred.message_id if deferred is not None else None
        if status_message_id is None:  # older API answers carry no message id
            status_message_id = (await interaction.original_response()).id
        delivery = {
            **token_fields(interaction, status_message_id, ephemeral=not settings.public_results),
            "reply_to_message_id": reply_to,
        }
    job = Job(
        **delivery,
        parent_id=ask.parent_id,
        kind=ask.kind,
        mode=request.mode.value,
        prompt=ask.prompt,
        strength=strength,
        seed=ask.seed,
        fast=ask.fast,
        outpaint=ask.outpaint,  # as given ("all=50%"): it parsed, and the runner parses it again
        source_hash=await _keep(bot, source),
        mask_hash=await _keep(bot, mask) if mask else None,
        style_hash=await _keep(bot, style) if style else None,
        warnings=tips(source.image.size, request.mode.value, strength, ask.prompt),
    )
    stored = await submit(bot, job)
    if in_channel and not quiet:  # end the private "thinking…" note
        await interaction.edit_original_response(content="Queued: the result will reply to that message.")
    return stored


def origin(interaction: discord.Interaction) -> dict[str, Any]:
    """Job fields for who asked, where, and how large an upload the interaction allows."""
    return {
        "owner_id": interaction.user.id,
        "guild_id": interaction.guild_id,
        "channel_id": interaction.channel_id,
        "upload_limit": interaction.filesize_limit,
    }


def token_fields(interaction: discord.Interaction, status_message_id: int | None, *, ephemeral: bool) -> dict[str, Any]:
    """Job fields for a job whose status message is the interaction's deferred response: edited, and
    then turned into the result, through the interaction's token while it lives."""
    return {
        **origin(interaction),
        "interaction_id": interaction.id,
        "interaction_token": interaction.token,
        "token_expires_at": interaction.created_at.timestamp() + TOKEN_LIFETIME,
        "ephemeral": ephemeral,
        "status_message_id": status_message_id,
    }


def reply_fields(interaction: discord.Interaction, message_id: int | None) -> dict[str, Any]:
    """Job fields for a job whose status and result are posted to the channel, replying to `message_id`.

    No interaction token is kept: the status message is the bot's own channel message, which the
    interaction's webhook could not edit, and no token limits it.
    """
    return {**origin(interaction), "ephemeral": False, "reply_to_message_id": message_id}


async def refuse_after_defer(interaction: discord.Interaction, message: str, *, keep_original: bool = False) -> None:
    """Tell the user privately why not, once the interaction is deferred.

    :param keep_original: the interaction was made on a message (a button): its "original response" is
        that message, which must stay. Otherwise it is the deferred "thinking" message, which may be
        public and is removed.
    """
    await interaction.followup.send(sentence(message), ephemeral=True)
    if keep_original:
        return
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.info("could not remove the deferred response of interaction %s", interaction.id)


# --- checks and wording -----------------------------------------------------------------------------


def check_text_inputs(prompt: str, strength: float | None, mode: str | None = None) -> None:
    """The checks that need no download, run before deferring."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"the prompt is {len(prompt)} characters, over the {MAX_PROMPT_CHARS} limit")
    if strength is not None and not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength:g}")
    if mode == Mode.KONTEXT and not prompt.strip():
        raise InputError('kontext needs an instruction as the prompt, e.g. "make her hair red"')


def sentence(message: str) -> str:
    """An error message as a sentence: capitalised, one full stop."""
    message = message.strip().rstrip(".")
    return f"{message[:1].upper()}{message[1:]}."


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


# --- images -------------------------------------------------------------------------------------------


async def _load(bot: RestyleBot, given: ImageInput, label: str) -> _Loaded:
    limits = bot.config.engine.limits
    if isinstance(given, str):
        image = await asyncio.to_thread(_read_stored, bot.config.images_dir, given, limits, label)
        return _Loaded(image, given, None, "")
    data, image = await fetch_image(given, limits, label=label, session=bot.downloads)
    return _Loaded(image, None, data, _suffix(given))


def _read_stored(images_dir: Path, digest: str, limits: ImageLimits, label: str) -> Image.Image:
    # In a thread: reads the file and decodes it.
    try:
        data = store.read_image(images_dir, digest)
    except store.NotFoundError:
        raise InputError(f"the {label} of that job is no longer stored") from None
    return load_image(data, limits, label=label)


async def _keep(bot: RestyleBot, loaded: _Loaded) -> str:
    """The image's digest, storing a download first."""
    if loaded.digest is not None:
        return loaded.digest
    assert loaded.data is not None
    return await asyncio.to_thread(store.put_image, bot.config.images_dir, loaded.data, loaded.suffix)


def _check(request: GenerationRequest, extra: Callable[[GenerationRequest], None] | None) -> None:
    # In a thread: mask and alpha checks read every pixel.
    if extra is not None:
        extra(request)
    check_request(request)


def _suffix(attachment: discord.Attachment) -> str:
    name = attachment.filename.lower()
    return next((suffix for suffix in IMAGE_SUFFIXES if name.endswith(suffix)), ".img")

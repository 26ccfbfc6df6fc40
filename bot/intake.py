"""Attachments in: size checked before downloading, capped while streaming, decoded off the loop.

Only the attachment URLs Discord sends are fetched. Every refusal is an `InputError` whose message
is shown to the user as is.

    >>> data, image = await fetch_image(attachment, limits, label="image")
"""

from __future__ import annotations

import asyncio

import aiohttp
import discord
from PIL import Image

from engine.errors import InputError
from engine.images import ImageLimits, load_image

__all__ = ["fetch_image", "read_capped"]

_CHUNK = 64 * 1024


async def read_capped(
    attachment: discord.Attachment, max_bytes: int, *, label: str, session: aiohttp.ClientSession | None = None
) -> bytes:
    """The attachment's bytes, refusing it from its declared size and again while streaming.

    :param session: a session to reuse (the bot keeps one: a new one per download costs a
        connection set-up each time); None opens one for this download
    """
    if attachment.size > max_bytes:
        raise InputError(f"{label} is {attachment.size / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit")
    if attachment.size == 0:
        raise InputError(f"{label} is empty (0 bytes)")
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await read_capped(attachment, max_bytes, label=label, session=own)
    async with session.get(attachment.url, timeout=aiohttp.ClientTimeout(total=60)) as response:
        if response.status != 200:
            raise InputError(f"could not download the {label} (HTTP {response.status}): try attaching it again")
        chunks, total = [], 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            total += len(chunk)
            if total > max_bytes:  # the declared size was wrong
                raise InputError(f"{label} is over the {max_bytes / 2**20:.1f} MB limit")
            chunks.append(chunk)
    return b"".join(chunks)


async def fetch_image(
    attachment: discord.Attachment,
    limits: ImageLimits,
    *,
    label: str = "image",
    session: aiohttp.ClientSession | None = None,
) -> tuple[bytes, Image.Image]:
    """Download and decode one attachment; the decoding runs in a thread."""
    content_type = (attachment.content_type or "").split(";")[0]
    if content_type and not content_type.startswith("image/"):
        raise InputError(f"{label} must be an image, but {attachment.filename!r} is {content_type}")
    if attachment.width is not None and attachment.height is not None:
        pixels = attachment.width * attachment.height
        if pixels > limits.max_pixels:
            raise InputError(
                f"{label} is {attachment.width}x{attachment.height} = {pixels / 1e6:.1f} MP, over the "
                f"{limits.max_pixels / 1e6:.1f} MP limit"
            )
    data = await read_capped(attachment, limits.max_bytes, label=label, session=session)
    image = await asyncio.to_thread(load_image, data, limits, label=label)
    return data, image

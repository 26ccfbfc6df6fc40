"""Source and result side by side in one PNG, for the Compare button. Synchronous file and Pillow
work: run it in a thread.

>>> upload = await asyncio.to_thread(comparison, images_dir, job, interaction.filesize_limit)
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot import store
from bot.delivery import Upload, fit_upload
from bot.jobs import Job
from engine.images import flatten, load_image

__all__ = ["GAP", "MAX_HEIGHT", "comparison", "side_by_side"]

#: both images are scaled to one height, at most this (a preview, not a download of the full result)
MAX_HEIGHT = 1024
#: pixels of background between the two images
GAP = 8
#: the background behind transparent pixels and in the gap
BACKGROUND = (255, 255, 255)


def side_by_side(source: bytes, result: bytes, *, max_height: int = MAX_HEIGHT, gap: int = GAP) -> bytes:
    """One PNG: `source` on the left, `result` on the right, both scaled to the same height.

    The height is the taller image's, capped at `max_height`, so an outpainted result (larger than
    its source) and its source line up. Transparent pixels are shown over white.

    :param source: the source image's encoded bytes
    :param result: the result image's encoded bytes
    :param max_height: the height cap of the sheet, at least 1
    :param gap: pixels between the two images, at least 0
    :raises engine.errors.InputError: if either image cannot be decoded
    """
    if max_height < 1:
        raise ValueError(f"max_height must be at least 1, got {max_height!r}")
    if gap < 0:
        raise ValueError(f"gap must be 0 or more, got {gap!r}")
    left = flatten(load_image(source, label="source"))
    right = flatten(load_image(result, label="result"))
    height = min(max(left.height, right.height), max_height)
    left, right = _to_height(left, height), _to_height(right, height)
    sheet = Image.new("RGB", (left.width + gap + right.width, height), BACKGROUND)
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.width + gap, 0))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def comparison(images_dir: str | Path, job: Job, upload_limit: int) -> Upload:
    """The sheet of a stored job, as a file that fits `upload_limit` bytes (see `bot.delivery.fit_upload`).

    :param images_dir: the image store
    :param job: a job with a result
    :param upload_limit: bytes the reply may upload
    :raises ValueError: if the job has no result yet
    :raises bot.store.NotFoundError: if its source or result is no longer stored
    """
    if job.result_hash is None:
        raise ValueError(f"job {job.id!r} has no result yet")
    sheet = side_by_side(store.read_image(images_dir, job.source_hash), store.read_image(images_dir, job.result_hash))
    return fit_upload(sheet, upload_limit, f"compare-{job.id}")


def _to_height(image: Image.Image, height: int) -> Image.Image:
    if image.height == height:
        return image
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)

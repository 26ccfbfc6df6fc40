"""bot.compare: the Compare button's side-by-side sheet."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot import store
from bot.compare import GAP, comparison, side_by_side
from bot.jobs import Job
from engine.errors import InputError


def png(size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_same_height_images_sit_side_by_side() -> None:
    sheet = open_png(side_by_side(png((300, 200), (255, 0, 0)), png((300, 200), (0, 0, 255))))
    assert sheet.size == (300 + GAP + 300, 200)
    assert sheet.getpixel((10, 10)) == (255, 0, 0)
    assert sheet.getpixel((300 + GAP + 10, 10)) == (0, 0, 255)


def test_a_larger_result_scales_the_source_up_to_its_height() -> None:
    # an outpainted result: wider and taller than its source
    sheet = open_png(side_by_side(png((300, 200), (255, 0, 0)), png((600, 400), (0, 255, 0))))
    assert sheet.size == (600 + GAP + 600, 400)


def test_the_height_is_capped() -> None:
    sheet = open_png(side_by_side(png((100, 50), (0, 0, 0)), png((400, 200), (0, 0, 0)), max_height=100, gap=0))
    assert sheet.size == (200 + 200, 100)


def test_transparency_is_shown_over_white() -> None:
    sheet = open_png(side_by_side(png((20, 20), (0, 0, 0, 0), "RGBA"), png((20, 20), (0, 0, 0)), gap=0))
    assert sheet.mode == "RGB" and sheet.getpixel((5, 5)) == (255, 255, 255)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="source"):
        side_by_side(b"not an image", png((10, 10), (0, 0, 0)))
    with pytest.raises(ValueError, match="max_height"):
        side_by_side(png((10, 10), (0, 0, 0)), png((10, 10), (0, 0, 0)), max_height=0)


def test_comparison_of_a_stored_job_fits_the_upload_limit(tmp_path) -> None:
    source = store.put_image(tmp_path, png((300, 200), (255, 0, 0)))
    result = store.put_image(tmp_path, png((300, 200), (0, 0, 255)))
    job = Job(owner_id=1, channel_id=2, source_hash=source, result_hash=result)
    upload = comparison(tmp_path, job, upload_limit=10 * 2**20)
    assert upload.filename == f"compare-{job.id}.png" and open_png(upload.data).size == (300 + GAP + 300, 200)
    with pytest.raises(ValueError, match="no result"):
        comparison(tmp_path, Job(owner_id=1, channel_id=2, source_hash=source), upload_limit=10 * 2**20)
    with pytest.raises(store.NotFoundError):
        comparison(tmp_path, Job(owner_id=1, channel_id=2, source_hash=source, result_hash="0" * 64), 10 * 2**20)

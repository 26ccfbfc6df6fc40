"""Results over the upload limit go as WebP or JPEG, then downscaled, and the embed says so."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.delivery import fit_upload
from tests.bot.conftest import delivered, run, running_bot
from tests.bot.test_restyle import restyle
from tests.fakediscord import FakeDiscord


def noisy_png(size: int = 256) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_png_under_the_limit_is_sent_as_is():
    png = noisy_png()
    upload = fit_upload(png, len(png), "r")
    assert upload.filename == "r.png" and upload.data == png and upload.note is None


def test_over_the_limit_falls_back_to_webp_then_jpeg_then_smaller():
    png = noisy_png()
    webp = fit_upload(png, len(png) - 1, "r")
    assert webp.filename == "r.webp" and len(webp.data) < len(png) and "WEBP" in webp.note
    small = fit_upload(png, 8_000, "r")
    assert small.filename == "r.jpg" and len(small.data) <= 8_000 and "downscaled" in small.note
    assert Image.open(io.BytesIO(small.data)).width < 256


def test_an_impossible_limit_is_an_error():
    with pytest.raises(ValueError, match="cannot fit"):
        fit_upload(noisy_png(), 10, "r")


def test_the_interactions_upload_limit_is_read_and_the_fallback_explained(tmp_path, monkeypatch):
    from tests.fakediscord import interactions

    monkeypatch.setattr(interactions, "ATTACHMENT_SIZE_LIMIT", 6_000)

    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await restyle(fake)
            return await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)

    result = run(main())
    attachment = result.attachments[0]
    assert len(attachment.data) <= 6_000 and not attachment.filename.endswith(".png")
    notes = [f["value"] for f in result.embeds[0]["fields"]]
    assert any("upload limit" in note for note in notes)

"""/inpaint, /outpaint and /edit end to end: the real bot, the tiny engine, the fake Discord."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from bot import store
from bot.jobs import JobState
from engine.provenance import read_provenance
from tests.bot.conftest import COFFEE, delivered, private_text, run, running_bot
from tests.fakediscord import CallbackType, FakeDiscord


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def coffee() -> Image.Image:
    return Image.open(io.BytesIO(COFFEE)).convert("RGB")  # 300x200


def transparent_coffee() -> bytes:
    """The coffee photo with a transparent hole: the area to repaint."""
    image = coffee().convert("RGBA")
    image.paste((0, 0, 0, 0), (100, 50, 200, 150))
    return png(image)


def mask(size: tuple[int, int] = (300, 200)) -> bytes:
    image = Image.new("L", size, 0)
    image.paste(255, (size[0] // 3, size[1] // 4, 2 * size[0] // 3, 3 * size[1] // 4))
    return png(image)


def size_of(message) -> tuple[int, int]:
    return Image.open(io.BytesIO(message.attachments[0].data)).size


async def command(fake: FakeDiscord, name: str, image: bytes, filename: str, **options):
    content_type = "image/png" if filename.endswith(".png") else "image/jpeg"
    attachment = fake.add_attachment(image, filename, content_type)
    return await fake.slash(fake.alice, name, {"image": attachment, **options})


def test_inpaint_with_a_mask_and_from_transparency(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            mask_file = fake.add_attachment(mask(), "mask.png", "image/png")
            with_mask = await command(fake, "inpaint", COFFEE, "coffee.jpg", prompt="a red apple", mask=mask_file)
            callback = await with_mask.wait_callback()
            first = await fake.wait_for(lambda: delivered(with_mask, bot.db), timeout=30)
            from_alpha = await command(fake, "inpaint", transparent_coffee(), "hole.png", prompt="a red apple")
            second = await fake.wait_for(lambda: delivered(from_alpha, bot.db), timeout=30)
            jobs = [store.find_job_by_result_message(bot.db, m.id) for m in (first, second)]
            return callback, with_mask, jobs, first

    callback, interaction, (masked, alpha), result = run(main())
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and interaction.ack_latency < 3
    for job in (masked, alpha):
        assert (job.kind, job.mode, job.state, job.prompt) == ("inpaint", "fill", JobState.DELIVERED, "a red apple")
        assert job.strength == 1.0  # the default: FLUX.1 Fill paints the masked area afresh
    assert masked.mask_hash == hashlib.sha256(mask()).hexdigest()
    assert masked.source_hash == hashlib.sha256(COFFEE).hexdigest()
    assert alpha.mask_hash is None  # the engine takes the mask from the PNG's alpha
    assert alpha.source_hash == hashlib.sha256(transparent_coffee()).hexdigest()
    parameters, _ = read_provenance(result.attachments[0].data)
    assert "Mode: fill (inpaint)" in parameters and "Denoising strength: 1" in parameters
    assert result.embeds[0]["title"] == "fill · strength 1"


def test_outpaint_widens_the_image_at_full_strength(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await command(fake, "outpaint", COFFEE, "coffee.jpg", direction="right", amount="50%")
            result = await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            everywhere = await command(fake, "outpaint", COFFEE, "coffee.jpg", direction="all", prompt="a café")
            await fake.wait_for(lambda: delivered(everywhere, bot.db), timeout=30)
            return store.recent_jobs(bot.db, limit=2), size_of(result)

    (all_sides, right), (width, height) = run(main())
    assert (right.kind, right.mode, right.outpaint, right.strength) == ("outpaint", "fill", "right=50%", 1.0)
    assert (all_sides.outpaint, all_sides.prompt) == ("all=50%", "a café")  # 50% unless told
    assert abs(width / height - 1.5 * 300 / 200) < 0.1  # half as wide again, the same height


def test_edit_follows_an_instruction_with_kontext(tmp_path):
    async def main():
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            interaction = await command(fake, "edit", COFFEE, "coffee.jpg", instruction="make the cup blue", strength=0.8)
            await fake.wait_for(lambda: delivered(interaction, bot.db), timeout=30)
            return store.recent_jobs(bot.db, limit=1)[0]

    job = run(main())
    assert (job.kind, job.mode, job.prompt, job.strength) == ("edit", "kontext", "make the cup blue", 0.8)
    assert job.state is JobState.DELIVERED and job.mask_hash is None and job.outpaint is None


def test_bad_edits_get_a_private_message_and_nothing_is_stored(tmp_path):
    async def main():
        outcomes = []
        async with FakeDiscord() as fake, running_bot(fake, tmp_path) as bot:
            cases = [
                # a JPEG has no transparency, so without a mask there is nothing to repaint
                ("inpaint", COFFEE, "coffee.jpg", {"prompt": "an apple"}, "inpainting needs a mask"),
                # an opaque PNG neither
                ("inpaint", png(coffee()), "coffee.png", {"prompt": "an apple"}, "inpainting needs a mask"),
                (
                    "inpaint",
                    COFFEE,
                    "coffee.jpg",
                    {"prompt": "an apple", "mask": fake.add_attachment(mask((100, 100)), "m.png", "image/png")},
                    "mask is 100x100 but the image is 300x200",
                ),
                (
                    "inpaint",
                    COFFEE,
                    "coffee.jpg",
                    {"prompt": "an apple", "mask": fake.add_attachment(b"notes", "m.txt", "text/plain")},
                    "mask must be an image",
                ),
                ("inpaint", COFFEE, "coffee.jpg", {"prompt": "an apple", "strength": 1.5}, "between 0 and 1"),
                ("edit", COFFEE, "coffee.jpg", {"instruction": "   "}, "needs an instruction"),
                ("edit", COFFEE, "coffee.jpg", {"instruction": "x" * 1001}, "over the 1000 limit"),
            ]
            for name, image, filename, options, expected in cases:
                interaction = await command(fake, name, image, filename, **options)
                await interaction.wait_callback()
                text = await fake.wait_for(lambda i=interaction: private_text(i), timeout=10)
                outcomes.append((expected, text, interaction))
            return outcomes, store.recent_jobs(bot.db, limit=5), list(bot.config.images_dir.rglob("*.*"))

    outcomes, jobs, images = run(main())
    assert jobs == [] and images == []  # no job, and no image kept either
    for expected, text, interaction in outcomes:
        assert expected.lower() in text.lower(), (expected, text)
        assert text[0].isupper() and text.endswith(".") and not text.endswith("..")
        assert interaction.ack_latency < 3
        assert interaction.original is None or interaction.original.deleted or interaction.original.ephemeral

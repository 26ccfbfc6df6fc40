"""Fill: inpainting keeps every unmasked pixel; outpainting extends the canvas where asked."""

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.images import budget_size, fit_to_budget
from engine.preprocess import feather_radius, outpaint_canvas
from engine.types import GenerationRequest, Mode, Outpaint
from tests.engine.helpers import pixels


def fill(image, **kwargs):
    kwargs.setdefault("prompt", "a red apple")
    kwargs.setdefault("seed", 5)
    kwargs.setdefault("strength", 1.0)
    return GenerationRequest(image=image, mode=Mode.FILL, **kwargs)


def far_from(mask: np.ndarray, distance: int) -> np.ndarray:
    """Pixels farther than `distance` (in both axes) from any masked pixel."""
    ys, xs = np.nonzero(mask)
    near = np.zeros_like(mask, dtype=bool)
    near[max(0, ys.min() - distance) : ys.max() + distance + 1, max(0, xs.min() - distance) : xs.max() + distance + 1] = True
    return ~near


def test_inpaint_preserves_unmasked_pixels(renderer, photo):
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (120, 60, 200, 140))
    result = renderer.render(fill(photo, mask=mask))
    source = pixels(fit_to_budget(photo, renderer.settings.budget))
    out = pixels(result.image)
    working_mask = np.asarray(mask.resize(result.image.size)) >= 128
    keep = far_from(working_mask, 2 * feather_radius(result.image.size) + 1)
    assert keep.sum() > 0.5 * keep.size
    assert np.array_equal(out[keep], source[keep])  # exactly the source outside the mask
    assert np.abs(out[working_mask] - source[working_mask]).mean() > 5  # repainted inside


def test_mask_from_the_source_transparency(renderer, photo):
    rgba = photo.convert("RGBA")
    alpha = Image.new("L", photo.size, 255)
    alpha.paste(0, (0, 0, 100, 100))  # a transparent corner to repaint
    rgba.putalpha(alpha)
    result = renderer.render(fill(rgba))
    out = pixels(result.image)
    source = pixels(fit_to_budget(photo, renderer.settings.budget))
    hole = np.asarray(alpha.resize(result.image.size)) < 128
    keep = far_from(hole, 2 * feather_radius(result.image.size) + 1)
    assert np.array_equal(out[keep], source[keep])
    assert np.abs(out[hole] - source[hole]).mean() > 5


def test_fill_without_a_mask(renderer, photo):
    with pytest.raises(InputError, match="fill needs a mask"):
        renderer.render(fill(photo))


def test_mask_size_mismatch(renderer, photo):
    with pytest.raises(InputError, match="mask is 100x100 but the image is 300x200: they must be the same size"):
        renderer.render(fill(photo, mask=Image.new("L", (100, 100), 255)))


def test_all_black_mask(renderer, photo):
    with pytest.raises(InputError, match="mask is all black"):
        renderer.render(fill(photo, mask=Image.new("L", photo.size, 0)))


def test_mask_and_outpaint_together(renderer, photo):
    with pytest.raises(InputError, match="either a mask"):
        renderer.render(fill(photo, mask=Image.new("L", photo.size, 255), outpaint=Outpaint.parse("right=10")))


@pytest.mark.parametrize(
    ("spec", "padding"),
    [("right=150", (0, 150, 0, 0)), ("all=25%", (75, 75, 50, 50)), ("left=10%,down=100", (30, 0, 0, 100))],
)
def test_outpaint_geometry(renderer, photo, spec, padding):
    outpaint = Outpaint.parse(spec)
    assert outpaint.resolve(*photo.size) == padding
    left, right, up, down = padding
    budget = renderer.settings.budget
    result = renderer.render(fill(photo, outpaint=outpaint))
    expected = budget_size(photo.width + left + right, photo.height + up + down, budget)
    assert result.image.size == expected

    canvas, mask, (bl, bt, br, bb) = outpaint_canvas(photo, padding, budget)
    assert canvas.size == expected
    # The source sits where the padding says, scaled with the canvas.
    assert bl == round(left * expected[0] / (photo.width + left + right))
    assert bt == round(up * expected[1] / (photo.height + up + down))
    out, before = pixels(result.image), pixels(canvas)
    masked = np.asarray(mask) > 0
    keep = far_from(masked, 2 * feather_radius(expected) + 1) if masked.any() else ~masked
    assert np.array_equal(out[keep], before[keep])  # the source region is untouched
    assert np.abs(out[masked] - before[masked]).mean() > 5  # the new area was painted
    # Everything outside the source's box is in the mask.
    outside = np.ones(masked.shape, dtype=bool)
    outside[bt:bb, bl:br] = False
    assert masked[outside].all()


@pytest.mark.parametrize(
    ("spec", "message"),
    [("top=5", "bad outpaint spec 'top=5'"), ("right=0", "adds nothing"), ("right", "bad outpaint spec")],
)
def test_bad_outpaint_specs(spec, message):
    with pytest.raises(InputError, match=message):
        Outpaint.parse(spec)

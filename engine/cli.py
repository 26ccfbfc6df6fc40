"""The command line: render one image, sweep strengths into a contact sheet, or show a control map.

    python -m engine render photo.jpg --mode canny --prompt "an ink drawing" --strength 0.6 -o out.png
    python -m engine sweep photo.jpg --strengths 0.3,0.5,0.7,0.9 --prompt "oil painting" -o sheet.png
    python -m engine preprocess depth photo.jpg -o depth.png

Bad input prints one line on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from engine import preprocess
from engine.errors import InputError, JobFailed
from engine.images import fit_to_budget, flatten, load_image_file
from engine.presets import PRESETS
from engine.provenance import encode_png
from engine.render import Renderer, check_request
from engine.settings import EngineSettings
from engine.types import GenerationRequest, Mode, Outpaint

__all__ = ["main"]

log = logging.getLogger("engine.cli")

T = TypeVar("T")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the usage too; one line is what we promise.
        raise InputError(message)


def _typed(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type that reports our InputError message as is."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__.strip("_")
    return convert


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"strength must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {text}")
    return value


def _strengths(text: str) -> list[float]:
    values = [_strength(part) for part in text.split(",") if part.strip()]
    if not values:
        raise InputError("--strengths needs at least one value, e.g. 0.3,0.5,0.7,0.9")
    return values


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the source image")
    parser.add_argument("--mode", type=_typed(Mode.parse), default=Mode.REDUX, help="redux, canny, depth, fill or kontext")
    parser.add_argument("--prompt", default="", help="what to make of it (kontext: the edit instruction)")
    parser.add_argument("--seed", type=int, help="random when absent; always recorded")
    parser.add_argument("--steps", type=int, help="denoising steps at strength 1 (default: the preset's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the mode's)")
    parser.add_argument("--mask", help="fill: white = repaint (default: the source PNG's transparent pixels)")
    parser.add_argument("--outpaint", type=_typed(Outpaint.parse), help="fill: e.g. right=256, all=25%%, left=10%%,up=64")
    parser.add_argument("--style", help="canny/depth: take the look from this image (Redux)")
    parser.add_argument("--fast", action="store_true", help="redux on FLUX.1-schnell, about 4 steps")
    _add_engine_options(parser)
    parser.add_argument("-o", "--output", required=True, help="where to write the PNG")


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="flux (default) or tiny")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1...")
    parser.add_argument("--pixel-budget", type=int, default=None, help="working-image area in pixels")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="Restyle's FLUX.1 img2img engine.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    render = commands.add_parser("render", help="render one image")
    _add_job_options(render)
    render.add_argument("--strength", type=_typed(_strength), default=0.5, help="0..1 (default 0.5)")

    sweep = commands.add_parser("sweep", help="render several strengths into a labelled contact sheet")
    _add_job_options(sweep)
    sweep.add_argument("--strengths", type=_typed(_strengths), default=[0.3, 0.5, 0.7, 0.9], help="default 0.3,0.5,0.7,0.9")

    prep = commands.add_parser("preprocess", help="write the canny or depth control map of an image")
    prep.add_argument("kind", choices=["canny", "depth"])
    prep.add_argument("image")
    _add_engine_options(prep)
    prep.add_argument("-o", "--output", required=True)
    return parser


def _settings(args: argparse.Namespace) -> EngineSettings:
    settings = EngineSettings.from_env()
    changes = {"preset": args.preset, "device": args.device, "pixel_budget": args.pixel_budget}
    return settings.with_(**{k: v for k, v in changes.items() if v is not None})


def _output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise InputError(f"output must be a .png file (it carries the provenance), got {path!r}")
    if not out.parent.exists():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    return out


def _request(args: argparse.Namespace, settings: EngineSettings, strength: float) -> GenerationRequest:
    limits = settings.limits
    return GenerationRequest(
        image=load_image_file(args.image, limits),
        prompt=args.prompt,
        mode=args.mode,
        strength=strength,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        fast=args.fast,
        mask=load_image_file(args.mask, limits, label="mask") if args.mask else None,
        outpaint=args.outpaint,
        style=load_image_file(args.style, limits, label="style image") if args.style else None,
        owner="cli",
    )


def _progress_bar(label: str) -> tuple[tqdm, Callable[[int, int], None]]:
    bar = tqdm(total=1, desc=label, unit="step", file=sys.stderr, leave=False)

    def on_step(step: int, total: int) -> None:
        bar.total = total
        bar.n = step
        bar.refresh()

    return bar, on_step


def _render(args: argparse.Namespace) -> None:
    settings = _settings(args)
    out = _output(args.output)
    request = _request(args, settings, args.strength)
    check_request(request)
    renderer = Renderer(settings)
    bar, on_step = _progress_bar(f"{request.mode.value} @ {request.strength:g}")
    with bar:
        result = renderer.render(request, on_step=on_step)
    out.write_bytes(result.png_bytes())
    print(
        f"{out}  {result.image.width}x{result.image.height}  seed {result.seed}  {result.steps} steps  "
        f"{result.timings['total']:.1f} s"
    )


def _sweep(args: argparse.Namespace) -> None:
    settings = _settings(args)
    out = _output(args.output)
    base = _request(args, settings, 0.5)
    check_request(base)
    renderer = Renderer(settings)
    seed = base.seed
    tiles: list[tuple[str, Image.Image]] = [("source", fit_to_budget(flatten(base.image), settings.budget))]
    for strength in args.strengths:
        request = dataclasses.replace(base, strength=strength, seed=seed)
        bar, on_step = _progress_bar(f"strength {strength:g}")
        with bar:
            result = renderer.render(request, on_step=on_step)
        seed = result.seed  # one seed across the sheet, so only the strength changes
        tiles.append((f"strength {strength:g}  ({result.steps} steps)", result.image))
    sheet = contact_sheet(tiles)
    parameters = f"{base.prompt}\nMode: {base.mode.value}, Seed: {seed}, Strengths: {args.strengths}"
    out.write_bytes(encode_png(sheet, parameters, {**base.describe(), "seed": seed, "strengths": args.strengths}))
    print(f"{out}  {len(tiles) - 1} strengths  seed {seed}")


def contact_sheet(tiles: Sequence[tuple[str, Image.Image]], label_height: int = 24) -> Image.Image:
    """The images side by side, each with its label above it."""
    height = max(img.height for _, img in tiles)
    width = sum(img.width for _, img in tiles) + 8 * (len(tiles) - 1)
    sheet = Image.new("RGB", (width, height + label_height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, label_height - 10))
    x = 0
    for label, img in tiles:
        sheet.paste(img.convert("RGB"), (x, label_height))
        draw.text((x + 4, 4), label, fill="black", font=font)
        x += img.width + 8
    return sheet


def _preprocess(args: argparse.Namespace) -> None:
    settings = _settings(args)
    out = _output(args.output)
    image = fit_to_budget(flatten(load_image_file(args.image, settings.limits)), settings.budget)
    if args.kind == "canny":
        result = preprocess.canny_edges(image)
    else:
        from engine.models import ModelRegistry

        model, processor = ModelRegistry(settings).depth_estimator()
        result = preprocess.depth_map(model, processor, image)
    result.save(out)
    print(f"{out}  {result.width}x{result.height}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
        {"render": _render, "sweep": _sweep, "preprocess": _preprocess}[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except JobFailed as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log.debug("render failed", exc_info=True)
        print(f"failed: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED
    return 0


def _quiet_libraries() -> None:
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)

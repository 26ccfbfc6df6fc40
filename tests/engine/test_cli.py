"""The command line: render, sweep, preprocess; every bad input is one line on stderr and status 2."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.provenance import read_provenance
from tests.conftest import ASSETS

COFFEE = str(ASSETS / "coffee.jpg")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_writes_a_png_with_provenance(capsys, tmp_path):
    out = tmp_path / "out.png"
    code, stdout, _ = run_cli(
        capsys,
        "render",
        COFFEE,
        "--mode",
        "canny",
        "--prompt",
        "ink",
        "--strength",
        "0.75",
        "--seed",
        "7",
        "--preset",
        "tiny",
        "-o",
        str(out),
    )
    assert code == 0
    assert "seed 7" in stdout and "6 steps" in stdout
    parameters, data = read_provenance(out.read_bytes())
    assert "Seed: 7" in parameters and "Denoising strength: 0.75" in parameters
    assert data["job"]["mode"] == "canny"


def test_render_fill_with_mask_and_outpaint(capsys, tmp_path):
    mask = Image.new("L", (300, 200), 0)
    mask.paste(255, (10, 10, 100, 100))
    mask.save(tmp_path / "mask.png")
    code, _, err = run_cli(
        capsys,
        "render",
        COFFEE,
        "--mode",
        "fill",
        "--mask",
        str(tmp_path / "mask.png"),
        "--preset",
        "tiny",
        "-o",
        str(tmp_path / "in.png"),
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys,
        "render",
        COFFEE,
        "--mode",
        "fill",
        "--outpaint",
        "right=50%",
        "--preset",
        "tiny",
        "-o",
        str(tmp_path / "out.png"),
    )
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").width > Image.open(tmp_path / "in.png").width


def test_render_with_style_and_fast(capsys, tmp_path):
    astronaut = str(ASSETS / "astronaut.jpg")
    assert (
        run_cli(
            capsys,
            "render",
            COFFEE,
            "--mode",
            "depth",
            "--style",
            astronaut,
            "--preset",
            "tiny",
            "-o",
            str(tmp_path / "a.png"),
        )[0]
        == 0
    )
    assert run_cli(capsys, "render", COFFEE, "--fast", "--preset", "tiny", "-o", str(tmp_path / "b.png"))[0] == 0


def test_sweep_writes_a_labelled_contact_sheet(capsys, tmp_path):
    out = tmp_path / "sheet.png"
    code, stdout, err = run_cli(
        capsys, "sweep", COFFEE, "--strengths", "0.3,0.5,0.7,0.9", "--prompt", "tea", "--preset", "tiny", "-o", str(out)
    )
    assert code == 0, err
    assert "4 strengths" in stdout
    sheet = Image.open(out)
    assert sheet.size == (5 * 112 + 4 * 8, 64 + 24)  # source + 4 tiles side by side, labels above
    _, data = read_provenance(out.read_bytes())
    assert data["job"]["strengths"] == [0.3, 0.5, 0.7, 0.9]


@pytest.mark.parametrize("kind", ["canny", "depth"])
def test_preprocess(capsys, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    code, _, err = run_cli(capsys, "preprocess", kind, COFFEE, "--preset", "tiny", "-o", str(out))
    assert code == 0, err
    image = Image.open(out)
    assert image.size == (112, 64)
    assert np.asarray(image.convert("L")).std() > 1  # not a blank map


def bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "notes.png").write_text("these are notes, not a picture")
    data = (ASSETS / "coffee.jpg").read_bytes()
    (tmp / "broken.jpg").write_bytes(data[: len(data) // 3])
    Image.new("L", (50, 50), 255).save(tmp / "small-mask.png")
    Image.new("RGB", (9000, 9000)).save(tmp / "huge.png")
    out = ["-o", str(tmp / "o.png"), "--preset", "tiny"]
    return [
        (["render", str(tmp / "missing.png"), *out], "image file not found"),
        (["render", str(tmp / "notes.png"), *out], "not an image"),
        (["render", str(tmp / "broken.jpg"), *out], "corrupt or truncated"),
        (["render", str(tmp / "empty.png"), *out], "empty (0 bytes)"),
        (["render", str(tmp / "huge.png"), *out], "9000x9000 = 81.0 MP, over the 50.0 MP limit"),
        (
            ["render", COFFEE, "--mode", "fill", "--mask", str(tmp / "small-mask.png"), *out],
            "mask is 50x50 but the image is 300x200",
        ),
        (["render", COFFEE, "--strength", "1.5", *out], "strength must be between 0 and 1, got 1.5"),
        (["render", COFFEE, "--strength", "lots", *out], "strength must be a number"),
        (["render", COFFEE, "--mode", "sketch", *out], "unknown mode 'sketch'"),
        (["render", COFFEE, "--mode", "fill", *out], "fill needs a mask"),
        (["render", COFFEE, "--mode", "kontext", *out], "kontext needs an instruction"),
        (["render", COFFEE, "--outpaint", "top=5", *out], "bad outpaint spec"),
        (["render", COFFEE, "-o", str(tmp / "o.jpg")], "output must be a .png file"),
        (["sweep", COFFEE, "--strengths", "0.2,2", *out], "strength must be between 0 and 1, got 2"),
        (["render", COFFEE], "the following arguments are required: -o/--output"),
        (["paint", COFFEE], "invalid choice: 'paint'"),
    ]


def test_every_bad_input_is_one_clear_line_and_status_2(capsys, tmp_path):
    for argv, message in bad_inputs(tmp_path):
        code, stdout, stderr = run_cli(capsys, *argv)
        assert code == 2, (argv, stderr)
        assert stderr.count("\n") == 1 and message in stderr, (argv, stderr)
        assert "Traceback" not in stderr and stdout == ""


def test_the_real_entry_point_prints_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "engine", "render", str(tmp_path / "missing.png"), "-o", "x.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: image file not found: '{tmp_path / 'missing.png'}'"]

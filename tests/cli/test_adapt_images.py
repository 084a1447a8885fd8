"""`nada adapt` and `nada sweep` with example images as the target (issue 12): a folder of
pictures and no --target text runs, the run folder keeps the images under their names, the
checkpoint records them, a resumed run uses the same ones, and a bad file is named."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylegan2
from cli.main import main
from invert.example_images import normalize_example
from nada.rundir import domain_image_path

TINY = ["--generator", "random-8", "--clip-models", "nada-tiny:random", "--layers", "1",
        "--probe-batch", "1", "--batch-size", "1", "--n-samples", "1", "--sample-every", "1",
        "--score-latents", "2", "--image-views", "2", "--device", "cpu", "--seed", "5"]  # fmt: skip


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def cats(tmp_path: Path) -> Path:
    folder = tmp_path / "cats"
    folder.mkdir()
    write_image(folder / "b.png", 1)
    write_image(folder / "a.jpg", 2)
    (folder / "notes.txt").write_text("not an image: skipped")
    return folder


def names_of(folder: Path) -> list[str]:
    """What the CLI must call the folder's images: sorted by file name, stored form's sha256."""
    files = sorted(p for p in folder.iterdir() if p.suffix != ".txt")
    return [normalize_example(p, max_pixels=10**6).sha256 for p in files]


def test_adapt_with_target_images_and_no_text_then_resume(tmp_path, cats, capsys):  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    argv = ["adapt", *TINY, "--target-images", str(cats), "--steps", "2",
            "--checkpoint-every", "1", "--no-progress"]  # fmt: skip
    assert _exit([*argv, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    names = names_of(cats)
    assert all(domain_image_path(out, name).is_file() for name in names)
    meta = stylegan2.load_generator(summary["checkpoint"]).metadata
    assert meta["params"]["target_images"] == names and meta["params"]["target_text"] == ""
    assert meta["domain"]["target_images"] == names and meta["domain"]["image_weight"] == 1.0
    first = meta["domain"]["embeddings"]

    # Resumed from its step-1 checkpoint with the same flags: the same images, the same
    # embeddings, and the same result as the uninterrupted run.
    resumed = tmp_path / "resumed"
    checkpoint = out / "checkpoints" / "step_000001.pt"
    assert _exit([*argv, "--out", str(resumed), "--resume", str(checkpoint)]) == 0
    again = stylegan2.load_generator(str(resumed / "adapted.pt")).metadata
    assert again["domain"]["target_images"] == names and again["domain"]["embeddings"] == first


def test_adapt_mixes_text_and_images_with_the_weight_flag(tmp_path, cats):  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    picture = write_image(tmp_path / "source.webp", 3)
    argv = ["adapt", *TINY, "--source", "photo", "--target", "cat", "--target-images",
            str(cats / "a.jpg"), str(cats / "b.png"), "--source-images", str(picture),
            "--target-image-weight", "0.25", "--steps", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    assert _exit(argv) == 0
    meta = stylegan2.load_generator(str(out / "adapted.pt")).metadata
    assert meta["domain"]["image_weight"] == 0.25
    assert sorted(meta["domain"]["target_images"]) == sorted(names_of(cats))
    assert meta["domain"]["source_images"] == [normalize_example(picture, max_pixels=10**6).sha256]


def test_a_sweep_uses_the_same_images_in_every_run(tmp_path, cats):  # type: ignore[no-untyped-def]
    out = tmp_path / "sweep"
    argv = ["sweep", *TINY, "--target-images", str(cats), "--steps", "1", "--lr", "0.01,0.02",
            "--out", str(out)]  # fmt: skip
    assert _exit(argv) == 0
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == 2
    for run in runs:
        meta = stylegan2.load_generator(run["checkpoint"]).metadata
        assert meta["domain"]["target_images"] == names_of(cats)
        assert all(domain_image_path(Path(run["dir"]), n).is_file() for n in names_of(cats))


def _broken(tmp_path: Path) -> list[str]:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return [str(bad)]


def _tiny(tmp_path: Path) -> list[str]:
    return [str(write_image(tmp_path / "tiny.png", 4, size=(20, 20)))]


def _many(tmp_path: Path) -> list[str]:
    return [str(write_image(tmp_path / f"{i}.png", i)) for i in range(17)]


@pytest.mark.parametrize(
    ("command", "make", "message"),
    [
        ("adapt", _broken, "broken.png is not an image in a known format"),
        ("adapt", _tiny, "tiny.png is 20x20 pixels; at least 32"),
        ("adapt", _many, "argument --target-images: at most 16 images (got 17)"),
        ("adapt", lambda p: [str(p / "nowhere")], "no such file or directory"),
        ("adapt", lambda p: [], "argument --target: must not be empty (or give --target-images)"),
        ("sweep", _broken, "broken.png is not an image in a known format"),
    ],
)
def test_bad_images_exit_2_naming_the_file(tmp_path, capsys, command, make, message):  # type: ignore[no-untyped-def]
    images = make(tmp_path)
    flags = ["--target-images", *images] if images else []
    extra = ["--lr", "0.01,0.02"] if command == "sweep" else []
    out = tmp_path / "out"
    assert _exit([command, *TINY, *flags, *extra, "--steps", "1", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "adapted.pt").exists()


def test_png_bytes_name_is_what_the_api_would_store():
    """The CLI and the API agree on an image's name: the sha256 of the same normal form."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, format="JPEG")
    a = normalize_example(buffer.getvalue(), max_pixels=10**6)
    b = normalize_example(buffer.getvalue(), max_pixels=10**6)
    assert a.sha256 == b.sha256 and len(a.sha256) == 64

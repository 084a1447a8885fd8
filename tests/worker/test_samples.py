"""Sample grids, PNG writing and seed parsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan2
from worker.samples import (
    image_grid,
    noise_shapes,
    parse_seeds,
    render,
    seeded_inputs,
    to_uint8,
    write_png,
)


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-7", list(range(8))), ("1,5,9", [1, 5, 9]), ("0-2, 10", [0, 1, 2, 10]), ("4", [4])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must name at least one seed (got '')"),
        ("a", "must look like '0-7' or '1,5,9' (got 'a')"),
        ("5-2", "must look like '0-7' or '1,5,9' (got '5-2')"),
        ("1-", "must look like '0-7' or '1,5,9' (got '1-')"),
        ("-3", "must look like '0-7' or '1,5,9' (got '-3')"),
        ("1,,x", "must look like '0-7' or '1,5,9' (got '1,,x')"),
        ("4294967296", "must be 0..4294967295"),
    ],
)
def test_parse_seeds_refuses(text, message):
    """The message leaves the subject to the caller, which names its flag: "argument
    --seeds: must ...", not "argument --seeds: seeds must ..."."""
    with pytest.raises(ValueError) as info:
        parse_seeds(text)
    assert str(info.value) == message


def test_to_uint8_clips_and_rounds():
    images = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert to_uint8(images)[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_image_grid_layout_and_tile_cap():
    rows = [torch.full((3, 3, 8, 8), -1.0), torch.full((3, 3, 8, 8), 1.0)]
    grid = image_grid(rows, padding=2)
    assert grid.shape == (8 * 2 + 2, 8 * 3 + 2 * 2, 3) and grid.dtype == np.uint8
    assert grid[0, 0].tolist() == [0, 0, 0] and grid[-1, -1].tolist() == [255, 255, 255]
    assert grid[8, 0].tolist() == [255, 255, 255]  # gutter
    assert image_grid(rows, max_tile=4, padding=0).shape == (8, 12, 3)
    with pytest.raises(ValueError):
        image_grid([rows[0], rows[1][:2]])


def test_write_png_is_atomic_and_readable(tmp_path):
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :, 1] = 200
    path = write_png(tmp_path / "a" / "x.png", image)
    assert np.array_equal(np.asarray(Image.open(path)), image)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]
    assert path.stat().st_mode & 0o044  # readable by the web server's user


def test_seeded_inputs_do_not_depend_on_the_other_seeds():
    generator = stylegan2.load_generator("random-8").generator
    z, noise = seeded_inputs([3, 7], generator)
    z7, noise7 = seeded_inputs([7], generator)
    assert torch.equal(z[1:], z7) and all(
        torch.equal(a[1:], b) for a, b in zip(noise, noise7, strict=True)
    )
    assert [tuple(n.shape[-2:]) for n in noise] == noise_shapes(generator)
    images = render(
        generator, z, noise, truncation=0.5, truncation_latent=torch.zeros(512), batch_size=1
    )
    assert images.shape == (2, 3, 8, 8)
    torch.testing.assert_close(
        render(generator, z7, noise7, truncation=0.5, truncation_latent=torch.zeros(512)),
        images[1:],
    )
    with pytest.raises(ValueError, match="truncation_latent"):
        render(generator, z, noise, truncation=0.5)

"""A user's photo decoded safely: the limits are ours and stated as ours, and what is stored
is pixels alone."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from invert.example_images import normalize_example
from invert.photos import MIN_SIDE, PhotoRejected, decode_photo, encode_png


def _png(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(16, 16), (16, 2_400_000 // 16), (31, 400)])
def test_photos_and_example_images_share_one_minimum_side(size: tuple[int, int]) -> None:
    data = _png(Image.new("L", size))
    for decode in (
        lambda: decode_photo(data, max_pixels=100_000_000),
        lambda: normalize_example(data, max_pixels=100_000_000),
    ):
        with pytest.raises(PhotoRejected, match=f"at least {MIN_SIDE} on each side"):
            decode()


def test_the_pixel_limit_named_is_ours_even_past_pillows_own() -> None:
    # A header claiming 20000 x 20000 (400 M pixels: past Pillow's bomb limit too).
    small = _png(Image.new("1", (20000, 20000)))
    with pytest.raises(PhotoRejected) as refused:
        decode_photo(small, max_pixels=40_000_000)
    assert "40000000" in str(refused.value)
    assert "DOS" not in str(refused.value) and "decompression" not in str(refused.value).lower()


def test_a_palette_png_with_transparency_is_stored_without_any_chunk_but_pixels() -> None:
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    data = _png(palette, transparency=0)
    image, fmt = decode_photo(data, max_pixels=1_000_000)
    stored = encode_png(image)
    chunks = _chunk_types(stored)
    assert fmt == "PNG" and image.mode == "RGB"
    assert set(chunks) == {"IHDR", "IDAT", "IEND"}, chunks
    assert Image.open(io.BytesIO(stored)).getpixel((0, 0)) == (255, 0, 0)


def _chunk_types(png: bytes) -> list[str]:
    at, found = 8, []
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        found.append(png[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return found

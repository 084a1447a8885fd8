"""Example images of a domain ("make it look like these"): one normal form and one name each.

An image-guided adaptation (issue 12) takes a few pictures as its target, and optionally as
its source. The API stores an upload, the CLI reads a file, the worker reads what either
left; all three must agree on what an image *is*, or a job retried on another worker, a
resumed job or a checkpoint's metadata could name a different picture than the one used.
So every example image is decoded with the photo checks (invert/photos.py: format, pixel
bomb, truncation, EXIF orientation), shrunk to at most MAX_SIDE pixels on its longer side
(CLIP looks at 224 px; a 6000 px phone photo would only cost disk), re-encoded as a plain
RGB PNG, and named by the sha256 of those PNG bytes. That name is what job parameters hold
(`target_images`, `source_images`), and `rundir.domain_image_path` is where a run keeps it.

Torch-free (Pillow only): the API process runs it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from invert.photos import PhotoRejected, decode_photo, encode_png
from nada import rundir

MAX_SIDE = 1024  # pixels on the longer side of a stored example image
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ExampleImage:
    sha256: str  # of `png`: the image's name everywhere
    png: bytes  # upright RGB PNG, longer side <= MAX_SIDE
    width: int
    height: int


def normalize_example(
    data: bytes | Path, *, max_pixels: int, admit: Callable[[int], None] | None = None
) -> ExampleImage:
    """The stored form of an example image (`admit`: decode_photo's pixel-budget hook).

    Raises:
        PhotoRejected: not a JPEG/PNG/WebP image, over `max_pixels`, under MIN_SIDE on a side,
            truncated or otherwise undecodable (the message is safe to show the user).
    """
    image, _ = decode_photo(data, max_pixels=max_pixels, admit=admit)  # MIN_SIDE checked there
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    png = encode_png(image)
    return ExampleImage(hashlib.sha256(png).hexdigest(), png, image.width, image.height)


def store_example(example: ExampleImage, run_dir: Path) -> Path:
    """Write the image into a run directory under its name (atomically; the same image twice
    is one file)."""
    path = rundir.domain_image_path(run_dir, example.sha256)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_bytes(path, example.png)
    return path


def check_stored(path: Path, sha256: str) -> Path:
    """The file at `path` if its bytes are the image named `sha256`; a worker calls this before
    it trusts an example image it did not write itself.

    Raises:
        PhotoRejected: missing, or other bytes than the name says.
    """
    if not SHA256_HEX.match(sha256):
        raise PhotoRejected(f"{sha256!r} is not an image name (64 lowercase hex digits)")
    try:
        data = path.read_bytes()
    except OSError:
        raise PhotoRejected(f"example image {sha256[:12]}… is missing ({path})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PhotoRejected(f"example image {sha256[:12]}… at {path} has other contents")
    return path

"""Decoding a photo a user uploaded, safely: the API's check and the CLI's loader.

A photo is untrusted bytes. Pillow reads the header first, so the format and the pixel
count are checked before any pixel is decoded (a 50 kB PNG can claim 100k x 100k pixels:
a decompression bomb); then the whole image is decoded (a truncated file fails here, not in
a worker later), the EXIF orientation is applied (phones store portraits sideways and say
so in a tag) and the result is re-encoded as a plain RGB PNG: no metadata, no animation,
one format for the workers. Torch-free (Pillow only): the API process runs it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from nada.errors import InputError

FORMATS = ("JPEG", "PNG", "WEBP")  # what Pillow calls them
MIN_SIDE = 32  # pixels on each side, for photos and example images alike: smaller is no
# photo of a face, and says nothing to CLIP (which looks at 224 px)


class PhotoRejected(InputError):
    """The bytes are not an acceptable photo; str() says why (safe to show the user)."""


def decode_photo(
    data: bytes | Path, *, max_pixels: int, admit: Callable[[int], None] | None = None
) -> tuple[Image.Image, str]:
    """The photo as an upright RGB image, and the format it came in.

    `admit`, if given, is called with the pixel count once the header has passed the checks,
    before any pixel is decoded; it may raise to refuse the decode (the API's pixel budget,
    backend/validation_slots.py), and its exception propagates as is.

    Raises:
        PhotoRejected: not an image, not JPEG/PNG/WebP, more than `max_pixels` pixels,
            under MIN_SIDE on a side, truncated or otherwise undecodable.
    """
    raw = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():
            # The bomb check is ours (below, before decoding); Pillow's own warning at
            # half its hard limit would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(raw, formats=FORMATS)
    except UnidentifiedImageError:
        raise PhotoRejected("is not an image in a known format (send JPEG, PNG or WebP)") from None
    except Image.DecompressionBombError:  # Pillow's own, far higher limit: say ours
        raise PhotoRejected(f"has more than {max_pixels} pixels, the most accepted") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoRejected(f"could not be read as an image ({exc})") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise PhotoRejected(
                f"has {width}x{height} pixels; at most {max_pixels} pixels are accepted"
            )
        if min(width, height) < MIN_SIDE:
            raise PhotoRejected(f"is {width}x{height} pixels; at least {MIN_SIDE} on each side")
        fmt = str(image.format)
        if admit is not None:
            admit(width * height)
        try:
            image.load()  # every pixel now: a truncated file fails here
            upright = ImageOps.exif_transpose(image)  # a copy, orientation tag applied
            # drops alpha/palette; the first frame only. `upright` is a copy already: an RGB
            # one is not copied again (a 40-megapixel photo would hold 120 MB more).
            rgb = upright if upright.mode == "RGB" else upright.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise PhotoRejected(f"is damaged or truncated ({exc})") from None
    return rgb, fmt


def encode_png(image: Image.Image) -> bytes:
    """`image` as a PNG of its pixels alone: no chunk from the upload survives (`info` would
    carry e.g. a palette's transparency into a tRNS chunk, or text and EXIF)."""
    plain = image.copy()
    plain.info = {}
    buffer = io.BytesIO()
    plain.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def load_photo(path: Path, *, max_pixels: int = 100_000_000) -> Image.Image:
    """A photo from disk for the CLI and the engine: the same checks, upright RGB."""
    return decode_photo(Path(path), max_pixels=max_pixels)[0]

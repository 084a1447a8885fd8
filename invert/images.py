"""Images between Pillow, numpy and tensors, and the PNGs the photo jobs write."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor

from nada import rundir


def image_to_tensor(image: PIL.Image.Image) -> Tensor:
    """An RGB image -> [1, 3, H, W] float32 in [-1, 1]."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # [H, W, 3]
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).div(127.5).sub(1.0)


def tensor_to_uint8(images: Tensor) -> np.ndarray:
    """[N, 3, H, W] in ~[-1, 1] -> uint8 [N, H, W, 3] (clipped, rounded)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def side_by_side(images: Sequence[Tensor], max_tile: int | None = None, gap: int = 2) -> np.ndarray:
    """[1, 3, S, S] images -> one uint8 row [S, n*S + gaps, 3] with white gutters."""
    tiles = []
    for image in images:
        image = image.detach().float().cpu()
        if max_tile is not None and image.shape[-1] > max_tile:
            image = F.interpolate(image, size=(max_tile, max_tile), mode="area")
        tiles.append(tensor_to_uint8(image)[0])
    h = tiles[0].shape[0]
    row = np.full((h, sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1), 3), 255, np.uint8)
    x = 0
    for tile in tiles:
        row[:, x : x + tile.shape[1]] = tile
        x += tile.shape[1] + gap
    return row


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, image: np.ndarray) -> str:
    """Write a uint8 [H, W, 3] image as PNG, atomically; return its sha256."""
    data = png_bytes(image)
    rundir.write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def center_crop(image: PIL.Image.Image) -> PIL.Image.Image:
    """The largest centred square of `image`, at its own resolution."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def center_square(image: PIL.Image.Image, size: int) -> PIL.Image.Image:
    """The largest centred square, resized to size x size (for photos that need no alignment)."""
    square = center_crop(image)
    return (
        square.resize((size, size), PIL.Image.Resampling.LANCZOS)
        if square.width != size
        else square
    )

"""Image grids and PNG files: what a person looks at to judge an adaptation.

Progress samples are a source row (the frozen generator) over an adapted row (the trainable
one) on fixed latents, so that successive files show the same faces changing. PNGs are
written atomically (temp file + os.replace): a reader polling the samples folder never sees
half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from nada.rundir import atomic_open
from stylegan2.family import family_of


def to_uint8(images: Tensor) -> np.ndarray:
    """[N, 3, H, W] in ~[-1, 1] -> uint8 [N, H, W, 3] (clipped, rounded)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def image_grid(
    rows: Sequence[Tensor],  # each [N, 3, H, W] in [-1, 1], same N, H, W
    max_tile: int | None = None,  # downscale tiles larger than this (pixels); None keeps size
    padding: int = 2,  # pixels between tiles
) -> np.ndarray:
    """Rows of images -> one uint8 image [rows*H, N*W, 3] with a white gutter."""
    if not rows:
        raise ValueError("image_grid needs at least one row")
    tiles = []
    for row in rows:
        row = row.detach().float()
        if max_tile is not None and row.shape[-1] > max_tile:
            row = F.interpolate(row, size=(max_tile, max_tile), mode="area")
        tiles.append(to_uint8(row))
    n, h, w, _ = tiles[0].shape
    if any(t.shape != tiles[0].shape for t in tiles):
        raise ValueError("image_grid rows must have the same number and size of images")
    grid = np.full(
        (len(tiles) * (h + padding) - padding, n * (w + padding) - padding, 3), 255, np.uint8
    )
    for r, row_tiles in enumerate(tiles):
        for c in range(n):
            y, x = r * (h + padding), c * (w + padding)
            grid[y : y + h, x : x + w] = row_tiles[c]
    return grid


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write a uint8 [H, W, 3] image as PNG, atomically."""
    with atomic_open(path, "wb") as f:
        Image.fromarray(image).save(f, format="PNG")
    return Path(path)


def parse_seeds(text: str) -> list[int]:
    """'0-7' -> [0..7]; '1,5,9' -> [1, 5, 9]; '0-3,10' -> [0, 1, 2, 3, 10].

    A refusal's message leaves out the subject: the caller names its flag
    ("argument --seeds: must look like ...")."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                first, last = int(lo), int(hi)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"must look like '0-7' or '1,5,9' (got {text!r})") from None
    if not seeds:
        raise ValueError(f"must name at least one seed (got {text!r})")
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise ValueError("must be 0..4294967295")
    return seeds


def noise_shapes(generator: nn.Module) -> list[tuple[int, int]]:
    """(height, width) of each per-layer noise input, in the order forward() takes them
    ([] for StyleGAN3, which has none)."""
    return family_of(generator).noise_shapes(generator)


def random_noise(
    shapes: Sequence[tuple[int, int]], batch: int, rng: torch.Generator
) -> list[Tensor]:
    """Per-layer noise [batch, 1, h, w] drawn from `rng` on the CPU (the same on any device)."""
    return [torch.randn(batch, 1, h, w, generator=rng) for h, w in shapes]


def seeded_inputs(seeds: Sequence[int], generator: nn.Module) -> tuple[Tensor, list[Tensor]]:
    """z [N, z_dim] and noise for each seed, each seed on its own RNG: seed 7 renders the
    same image whichever other seeds are in the grid."""
    family = family_of(generator)
    shapes = family.noise_shapes(generator)
    zs, noises = [], []
    for seed in seeds:
        rng = torch.Generator().manual_seed(int(seed))
        zs.append(torch.randn(1, family.z_dim(generator), generator=rng))
        noises.append(random_noise(shapes, 1, rng))
    return torch.cat(zs), [torch.cat(layer) for layer in zip(*noises, strict=True)]


def truncate(w: Tensor, center: Tensor | None, truncation: float) -> Tensor:
    """w (or W+) moved `1 - truncation` of the way towards `center` (the mean w), as
    rosinality's forward does it (bit for bit); truncation 1 leaves w as it is."""
    if truncation == 1:
        return w
    if center is None:
        raise ValueError("truncation != 1 needs truncation_latent (the mean w)")
    return center + truncation * (w - center)


@torch.no_grad()
def render(
    generator: nn.Module,
    z: Tensor,  # [N, z_dim] on any device
    noise: Sequence[Tensor],  # per layer [N, 1, h, w] (StyleGAN3: [])
    truncation: float = 1.0,  # psi; 1 disables truncation
    truncation_latent: Tensor | None = None,  # [w_dim] or [1, w_dim]
    batch_size: int = 4,  # images per forward pass (bounds memory)
) -> Tensor:
    """Images [N, 3, H, W] in ~[-1, 1] on the CPU, rendered in batches without a graph."""
    family = family_of(generator)
    device = next(generator.parameters()).device
    center = None if truncation_latent is None else truncation_latent.reshape(1, -1).to(device)
    if truncation < 1 and center is None:
        raise ValueError("truncation < 1 needs truncation_latent (the mean w)")
    out = []
    for i in range(0, z.shape[0], batch_size):
        part = slice(i, i + batch_size)
        # rosinality's forward truncates (psi < 1 only) before broadcasting w to W+
        ws = family.map(generator, z[part].to(device))
        if truncation < 1:
            ws = truncate(ws, center, truncation)
        image = family.synthesize(generator, ws, [n[part].to(device) for n in noise])
        out.append(image.float().cpu())
    return torch.cat(out)

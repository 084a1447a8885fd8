"""Generator files the tests make instead of trained ones (no real weights exist here)."""

from __future__ import annotations

from pathlib import Path

import stylegan2


def save_stand_in_adapted(path: Path, base: str, seed: int) -> Path:
    """Another random generator of `base`'s model, saved at `path` as an adapted.pt whose run
    adapted `base`: what the render, blend, edit and explore tests draw beside the base."""
    other = stylegan2.load_generator(base, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"params": {"generator": base}}
    stylegan2.save_generator(path, other.generator, other.latent_avg, meta)
    return path

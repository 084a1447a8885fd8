"""Where a job's models live: `ModelCache` (CLIP models and base generators kept between the
jobs of one worker process), `resolve_device`, and the CUDA math settings a run enables.

No training here: cached models are frozen, and the engine trains a copy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import stylegan2
from stylegan2.device import resolve_device
from worker.clip_models import ClipModel, canonical_clip_name, load_clip

__all__ = ["ModelCache", "enable_fast_cuda_math", "resolve_device"]


class ModelCache:
    """Loaded CLIP models, base generators and the photo jobs' models (the e4e encoder, the
    face detector, the perceptual loss), kept between jobs of one worker process.

    Keys are (name, device) — plus the seed for random CLIP weights and the file's size and
    mtime for generator paths — so a changed file is reloaded. Least recently used entries go
    first once a kind holds `max_items`. Cached models are frozen (requires_grad False) and
    never trained: the engine trains a copy.
    """

    def __init__(self, max_items: int = 4):
        self.max_items = max_items  # per kind (CLIP models, generators, photo models)
        self._clips: OrderedDict[tuple[Any, ...], ClipModel] = OrderedDict()
        self._generators: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._photo: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def clip(self, name: str, device: torch.device | str, seed: int = 0) -> ClipModel:
        canonical = canonical_clip_name(name)
        random = canonical.endswith(":random")
        key = (canonical, str(torch.device(device)), seed if random else None)
        return self._get(self._clips, key, lambda: load_clip(name, device, seed=seed))

    def generator(self, name_or_path: str, device: torch.device | str) -> Any:
        """A stylegan2.LoadedGenerator, frozen."""
        key = (*_file_key(name_or_path), str(torch.device(device)))

        def load() -> Any:
            loaded = stylegan2.load_generator(name_or_path, device=device)
            loaded.generator.eval().requires_grad_(False)
            return loaded

        return self._get(self._generators, key, load)

    def encoder(self, source: str | Path, device: torch.device | str) -> Any:
        """An invert.e4e.E4E (a registered name or a file), frozen."""
        from invert.e4e_weights import load_e4e

        key = ("encoder", *_file_key(str(source)), str(torch.device(device)))
        return self._get(self._photo, key, lambda: load_e4e(source, device=device))

    def detector(self, device: torch.device | str) -> Any:
        """The face detector + landmark network (loaded on its first photo)."""
        from invert.landmarks import FanDetector

        key = ("detector", str(torch.device(device)))
        return self._get(self._photo, key, lambda: FanDetector(device))

    def perceptual(self, device: torch.device | str) -> Any:
        """LPIPS, or None while its weights are not on this machine (asked again next
        time: a file placed meanwhile is picked up)."""
        from invert.perceptual import load_perceptual

        key = ("perceptual", str(torch.device(device)))
        if key in self._photo:
            return self._get(self._photo, key, lambda: None)
        loss = load_perceptual(torch.device(device))
        return loss if loss is None else self._get(self._photo, key, lambda: loss)

    def clear(self) -> None:
        self._clips.clear()
        self._generators.clear()
        self._photo.clear()

    def _get(self, store: OrderedDict, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        if key in store:
            store.move_to_end(key)
            return store[key]
        value = load()
        store[key] = value
        while len(store) > self.max_items:
            store.popitem(last=False)
        return value


def _file_key(name_or_path: str) -> tuple[Any, ...]:
    """A path with its size and mtime (a changed file is reloaded), or a name as it is."""
    path = Path(name_or_path)
    stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
    return (str(path.resolve()) if stamp else name_or_path, stamp)


def enable_fast_cuda_math(device: torch.device) -> None:
    """On CUDA: TF32 matmuls and convolutions (10-bit mantissa products, fp32 accumulation:
    far more precise than the generator's and CLIP's own error), and cuDNN autotuning (every
    generator pass of a run has the same shapes, since the probe runs in chunks of the
    training batch). Weights and activations stay fp32: StyleGAN2's demodulation and skip
    sums are where half precision hurts. (CLIP's precision: clip_models.ClipModel.autocast.)"""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

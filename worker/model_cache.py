"""The models a worker keeps between jobs: `ModelCache`, one typed shelf per kind of model
(CLIP models, base generators, the renders' blended generators, and the photo jobs'
encoders, face detectors and perceptual losses).

No training here: cached models are frozen, and the engine trains a copy. A cache is what
`run_adaptation` takes as `models`, and what `invert.pipeline.PhotoModels` describes for
the photo engine calls and `worker.renders.run_render`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch

import stylegan2

if TYPE_CHECKING:
    from invert.e4e import E4E
    from invert.landmarks import LandmarkDetector
    from invert.perceptual import PerceptualLoss
    from stylegan2 import LoadedGenerator
    from worker.clip_models import ClipModel

__all__ = ["ModelCache"]

Model = TypeVar("Model")


class _Shelf(Generic[Model]):
    """One kind of model by key, the least recently used first out past `max_items`."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Model] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Model]) -> Model:
        found = self.find(key)
        if found is None:
            found = load()
            self.put(key, found)
        return found

    def find(self, key: Hashable) -> Model | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, value: Model) -> None:
        self._items[key] = value
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class ModelCache:
    """Loaded CLIP models, base generators and the photo jobs' models (the e4e encoder, the
    face detector, the perceptual loss), kept between jobs of one worker process.

    Keys are (name, device) — plus the seed for random CLIP weights and the file's size and
    mtime for generator and encoder paths — so a changed file is reloaded. Least recently
    used entries go first once a kind holds `max_items`. Cached models are frozen
    (requires_grad False) and never trained: the engine trains a copy.
    """

    def __init__(self, max_items: int = 4):  # entries kept per kind of model
        self._clips: _Shelf[ClipModel] = _Shelf(max_items)
        self._generators: _Shelf[LoadedGenerator] = _Shelf(max_items)
        # Blends are whole generators too: half as many (a 1024 px one is 120 MB).
        self._blends: _Shelf[LoadedGenerator] = _Shelf(max(1, max_items // 2))
        self._encoders: _Shelf[E4E] = _Shelf(max_items)
        self._detectors: _Shelf[LandmarkDetector] = _Shelf(max_items)
        self._perceptual: _Shelf[PerceptualLoss] = _Shelf(max_items)

    def clip(self, name: str, device: torch.device | str, seed: int = 0) -> ClipModel:
        from worker.clip_models import canonical_clip_name, load_clip  # open_clip: when used

        canonical = canonical_clip_name(name)
        random = canonical.endswith(":random")
        key = (canonical, _device_key(device), seed if random else None)
        return self._clips.get(key, lambda: load_clip(name, device, seed=seed))

    def generator(self, name_or_path: str, device: torch.device | str) -> LoadedGenerator:
        """A stylegan2.LoadedGenerator, frozen."""

        def load() -> LoadedGenerator:
            loaded = stylegan2.load_generator(name_or_path, device=device)
            loaded.generator.eval().requires_grad_(False)
            return loaded

        return self._generators.get((*_file_key(name_or_path), _device_key(device)), load)

    def blend(
        self,
        sources: Sequence[str],
        mix: Hashable,
        device: torch.device | str,
        make: Callable[[], LoadedGenerator],
    ) -> LoadedGenerator:
        """A generator blended from `sources` (the base, then each domain: names or paths)
        by `mix` (worker/blends.py's Mix.key), made by `make` once per files, mix and device:
        the same render parameters asked again draw at once."""
        key = (tuple(_file_key(s) for s in sources), mix, _device_key(device))
        return self._blends.get(key, make)

    def encoder(self, source: str | Path, device: torch.device | str) -> E4E:
        """An invert.e4e.E4E (a registered name or a file), frozen."""
        from invert.e4e_weights import load_e4e

        key = (*_file_key(str(source)), _device_key(device))
        return self._encoders.get(key, lambda: load_e4e(source, device=device))

    def detector(self, device: torch.device | str) -> LandmarkDetector:
        """The face detector + landmark network (its networks load on its first photo)."""
        from invert.landmarks import FanDetector

        return self._detectors.get(_device_key(device), lambda: FanDetector(device))

    def perceptual(self, device: torch.device | str) -> PerceptualLoss | None:
        """LPIPS, or None while its weights are not on this machine (asked again next
        time: a file placed meanwhile is picked up)."""
        from invert.perceptual import load_perceptual

        key = _device_key(device)
        loss = self._perceptual.find(key)
        if loss is None:
            loss = load_perceptual(torch.device(device))
            if loss is not None:
                self._perceptual.put(key, loss)
        return loss

    def clear(self) -> None:
        for shelf in (self._clips, self._generators, self._blends, self._encoders,
                      self._detectors, self._perceptual):  # fmt: skip
            shelf.clear()


def _device_key(device: torch.device | str) -> str:
    return str(torch.device(device))


def _file_key(name_or_path: str) -> tuple[Any, ...]:
    """A path with its size and mtime (a changed file is reloaded), or a name as it is."""
    path = Path(name_or_path)
    stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
    return (str(path.resolve()) if stamp else name_or_path, stamp)

"""Whether a model a job names can be had on this server: cached, downloadable, or manual.

One answer for every kind of model, torch-free (the API lists it and refuses submissions
by it; the worker loads a cached CLIP file through `cached_clip_file`):

- **cached**: the file is here (the model-file cache, an override's local file, an upload),
  or nothing is needed (`random-<size>` generators, ':random' CLIP weights);
- **downloadable**: not here, but a URL is known and downloads are not switched off
  (`stylegan2.download.downloads_off`: NADA_OFFLINE or HF_HUB_OFFLINE). Whether the
  network is really there shows when the worker tries: it then fails in seconds;
- **manual**: neither; a person must install the file (`nada models add`, `nada weights
  add`, or Hugging Face's cache for CLIP) or turn downloads on. A submission that needs a
  manual model is refused (`check_adapt`, backend/api/submission.py).

The answer reads the files on *this* process's machine (NADA_CACHE_DIR, the Hugging Face
cache): a deployment whose workers keep another cache than the API's reports the API's.
It stats a few paths and hashes nothing, so it is cheap enough for every request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.generators import uploaded_path
from nada.catalog import RANDOM_TAG, split_clip_name
from nada.errors import ParamError
from nada.params import AdaptParams
from stylegan2 import registry
from stylegan2.download import downloads_off
from stylegan2.model_files import Availability, FileStatus


@dataclass(frozen=True)
class ModelAvailability:
    """One model's state on this server, with a short note for a user of the page."""

    availability: Availability
    note: str = ""  # what the state means here ('downloaded on first use, about 380 MB')

    @property
    def usable(self) -> bool:
        """A job may name it: it is here, or a worker can fetch it."""
        return self.availability != "manual"


CACHED = ModelAvailability("cached")
_NO_DOWNLOAD = ModelAvailability("cached", "seeded random weights: nothing to download")
_DOWNLOADS_OFF = "not on this server, and this server downloads nothing (offline)"
_BY_HAND = "not on this server and not downloadable: the operator must install it"


def _downloadable(size_mb: float | None) -> ModelAvailability:
    if downloads_off():
        return ModelAvailability("manual", _DOWNLOADS_OFF)
    size = f", about {size_mb:g} MB" if size_mb else ""
    return ModelAvailability("downloadable", f"downloaded on first use{size}")


def of_file(status: FileStatus[Any]) -> ModelAvailability:
    """A registered model file (a generator, an auxiliary weight) from its FileStatus,
    whose `availability` is the one rule (stylegan2/model_files.py), with the page's note."""
    state = status.availability
    if state == "cached":
        return CACHED
    if state == "downloadable":
        return _downloadable(status.entry.size_mb)
    has_url = status.entry.url is not None or bool(status.override)
    return ModelAvailability("manual", _DOWNLOADS_OFF if has_url and downloads_off() else _BY_HAND)


def generator(name: str, data_dir: Path) -> ModelAvailability:
    """A name a job may give as `generator` (random-<size>, registered, uploaded)."""
    try:
        if registry.parse_random_name(name) is not None:
            return _NO_DOWNLOAD
    except ValueError:
        return ModelAvailability("manual", "not a size a random generator can have")
    if name in registry.generator_names():
        return of_file(registry.GENERATORS.status(name))
    if uploaded_path(name, data_dir) is not None:
        return CACHED
    return ModelAvailability("manual", "unknown generator")


# -- CLIP weights: open_clip fetches them from the Hugging Face hub ----------------------

# (architecture, tag) -> the hub repository open_clip's pretrained config names
# (`open_clip.get_pretrained_cfg(arch, tag)['hf_hub']`, less its trailing '/'), for every
# pair nada/catalog.py offers; tests/backend/test_availability.py keeps the two equal.
CLIP_HF_HUB: dict[tuple[str, str], str] = {
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai",
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    ("ViT-B-16", "openai"): "timm/vit_base_patch16_clip_224.openai",
    ("ViT-B-16", "laion2b_s34b_b88k"): "laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
    ("ViT-L-14", "openai"): "timm/vit_large_patch14_clip_224.openai",
    ("ViT-L-14", "laion2b_s32b_b82k"): "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    ("ViT-L-14-336", "openai"): "timm/vit_large_patch14_clip_336.openai",
    ("RN50", "openai"): "timm/resnet50_clip.openai",
    ("RN101", "openai"): "timm/resnet101_clip.openai",
    ("RN50x4", "openai"): "timm/resnet50x4_clip.openai",
}
# The files open_clip asks the hub for, in its order (open_clip.constants): safetensors
# first where the repository has it.
CLIP_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Approximate download sizes (MB), for the page's note.
_CLIP_SIZE_MB = {"ViT-B-32": 605, "ViT-B-16": 599, "ViT-L-14": 1710, "ViT-L-14-336": 1710,
                 "RN50": 408, "RN101": 476, "RN50x4": 713}  # fmt: skip


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps downloads: $HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub (huggingface_hub.constants, read without importing it)."""
    configured = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_hf_file(repo: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of `filenames` cached for hub repository `repo` ('org/name'), or None.

    `models--<org>--<name>/snapshots/<revision>/<file>`: the revision refs/main names
    first, then any other snapshot."""
    folder = hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    try:
        main = (folder / "refs" / "main").read_text().strip()
    except OSError:
        main = ""
    for revision in sorted(snapshots.iterdir(), key=lambda p: p.name != main):
        for filename in filenames:
            path = revision / filename
            if path.is_file():  # follows the blob symlink: a dangling one is not a file
                return path
    return None


def cached_clip_file(arch: str, tag: str) -> Path | None:
    """The cached weights file of an offered CLIP `arch:tag` (CLIP_HF_HUB), or None."""
    repo = CLIP_HF_HUB.get((arch, tag))
    return None if repo is None else cached_hf_file(repo, CLIP_HF_FILES)


def clip_model(name: str) -> ModelAvailability:
    """A CLIP model name as a job gives it ('ViT-B-32', 'ViT-B-32:openai', ':random')."""
    arch, tag = split_clip_name(name)
    if tag == RANDOM_TAG:
        return _NO_DOWNLOAD
    if os.path.isabs(tag):  # the CLI's local weights file (the API offers tags only)
        return CACHED if os.path.isfile(tag) else ModelAvailability("manual", "no such file")
    if cached_clip_file(arch, tag) is not None:
        return CACHED
    return _downloadable(_CLIP_SIZE_MB.get(arch))


# -- refusing a submission ------------------------------------------------------------------


class ModelUnavailable(ParamError):
    """A job names a model that is neither here nor downloadable (a 422 naming the field)."""


def unavailable(field: str, what: str, state: ModelAvailability, instead: str) -> ModelUnavailable:
    """The refusal of a model a job needs: what it is, why, and what to pick instead."""
    return ModelUnavailable(
        field, f"names {what}, which this server cannot use: {state.note}; {instead}"
    )


def require_generator(name: str, data_dir: Path, *, field: str = "generator") -> None:
    state = generator(name, data_dir)
    if not state.usable:
        raise unavailable(
            field,
            f"generator {name!r}",
            state,
            "pick a generator marked cached or download (GET /generators), or ask the "
            "operator to install it",
        )


def require_clip_models(names: list[str], *, field: str = "clip_models") -> None:
    for name in names:
        state = clip_model(name)
        if not state.usable:
            arch, _ = split_clip_name(name)
            raise unavailable(
                field,
                f"CLIP model {name!r}",
                state,
                f"pick one marked cached (e.g. '{arch}:{RANDOM_TAG}', random weights for "
                "trying the service out), or ask the operator to install its weights",
            )


def check_adapt(params: AdaptParams, data_dir: Path) -> None:
    """Refuse an adaptation whose generator or CLIP models this server cannot use.

    Raises:
        ModelUnavailable: naming `generator` or `clip_models`.
    """
    require_generator(params.generator, data_dir)
    require_clip_models([spec.name for spec in params.clip_models])

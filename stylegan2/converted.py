"""A registered generator published as an NVIDIA pickle, converted once into our layout.

`load_generator(name)` comes here for every registry name. The entry's file is resolved by
the registry (stylegan2/model_files.py: downloaded once, resumable and locked, its sha256
published or trusted on first use and verified on every use). A pickle is then read as data
(stylegan2/nvidia_load.py) and written once in our checkpoint layout (`save_generator`:
rosinality's for StyleGAN2, ours for StyleGAN3) at `registry.converted_path(name)`
(`<cache>/generators/converted/<file>.pt`), with the pickle's sha256 and CONVERSION_VERSION
in its metadata. Later loads read that file: it holds G_ema alone (a third of the pickle)
and loads without re-running the conversion. A converted file whose record names another
pickle (a new download, `nada models add NAME --force`, an override) or another version is
converted again; the conversion is locked, so two workers starting at once convert once.

The .pkl stays in the cache next to it: it is the file the trust-on-first-use record
verifies and the one a re-conversion reads (`nada models list` counts it; deleting it makes
the next use download it again).

What the registry entry knows and the file does not -- the name, the `content_box` of a
letterboxed generator -- goes into the identity (and so into every adapted checkpoint's
`base`) and into the converted file's metadata.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from stylegan2 import registry
from stylegan2.checkpoint import _is_plain_pickle, _load_file, save_generator
from stylegan2.download import file_lock, sha256_file
from stylegan2.errors import CheckpointError
from stylegan2.loaded import LoadedGenerator
from stylegan2.nvidia_load import load_nvidia

log = logging.getLogger(__name__)

CONVERSION_VERSION = 1  # bump when the conversion changes what it writes: files re-convert
RECORD = "converted_from"  # the converted file's metadata key (and the identity's)


def load_registered(
    name: str, device: str | torch.device = "cpu", *, progress: bool | None = None
) -> LoadedGenerator:
    """The generator a registry name stands for, on `device`.

    Raises:
        registry.UnknownGeneratorError, DownloadError, ChecksumError: as registry.resolve.
        CheckpointError: the file is not a generator of the entry's size (or not readable).
    """
    info = registry.get_generator_info(name)
    path = registry.resolve(name, progress=progress)
    if _is_plain_pickle(path):
        loaded = _converted(info, path, device)
    else:  # a .pt: the entry's own format, or one the user added under this name
        loaded = _load_file(path, device, name=name, expected_size=info.size)
    identity = dict(loaded.identity)
    if info.content_box is not None:
        identity["content_box"] = list(info.content_box)
    return dataclasses.replace(loaded, identity=identity)


def _converted(
    info: registry.GeneratorInfo, pickle_path: Path, device: str | torch.device
) -> LoadedGenerator:
    """The converted checkpoint of `pickle_path`, written first if missing or stale."""
    digest = sha256_file(pickle_path)  # just verified by resolve: remembered, not re-read
    target = registry.converted_path(info.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(target.name + ".lock")):
        if target.is_file():
            try:
                loaded = _load_file(target, device, name=info.name, expected_size=info.size)
            except CheckpointError as exc:  # damaged: it is ours to rewrite
                log.warning("%s: converting again (%s)", info.name, exc)
            else:
                if _is_conversion_of(loaded.metadata.get(RECORD), digest):
                    return _with_record(loaded)
                log.info("%s: %s is not the conversion of %s; converting again",
                         info.name, target, pickle_path)  # fmt: skip
        _convert(info, pickle_path, digest, target)
        return _with_record(_load_file(target, device, name=info.name, expected_size=info.size))


def _convert(info: registry.GeneratorInfo, pickle_path: Path, digest: str, target: Path) -> None:
    """Read the pickle as data and write it in our layout at `target` (atomically)."""
    log.info("%s: converting %s into %s (once)", info.name, pickle_path, target)
    nvidia = load_nvidia(pickle_path, "cpu", name=info.name, expected_size=info.size)
    record = {
        "name": info.name,
        "sha256": digest,
        "url": info.url,
        "format": nvidia.identity["format"],  # 'nvidia-pytorch' / 'nvidia-tensorflow'
        "network": nvidia.identity["network"],  # 'G_ema' / 'Gs'
        "version": CONVERSION_VERSION,
    }
    metadata: dict[str, Any] = {**nvidia.metadata, RECORD: record}
    if info.content_box is not None:
        metadata["content_box"] = list(info.content_box)
    save_generator(target, nvidia.generator, nvidia.latent_avg, metadata)


def _is_conversion_of(record: Any, digest: str) -> bool:
    return (
        isinstance(record, dict)
        and record.get("sha256") == digest
        and record.get("version") == CONVERSION_VERSION
    )


def _with_record(loaded: LoadedGenerator) -> LoadedGenerator:
    """The identity says which pickle the converted file came from (plain data)."""
    identity = {**loaded.identity, RECORD: dict(loaded.metadata[RECORD])}
    return dataclasses.replace(loaded, identity=identity)

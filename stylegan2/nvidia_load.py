"""An NVIDIA .pkl as a LoadedGenerator: which network of the file, which family, which
converter.

The averaged generator is the one that draws the published images: `G_ema` in a PyTorch
pickle, `Gs` in a TensorFlow one (`G` is the raw training copy and is never used). A
StyleGAN3 generator (NVIDIA's training.networks_stylegan3) is built by
`stylegan2.stylegan3.from_nvidia`; every StyleGAN2 one (stylegan2-ada-pytorch, the TF
stylegan2 and stylegan2-ada files) is converted into our Generator by
`stylegan2.nvidia_stylegan2`. `load_generator` comes here for every plain pickle.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stylegan2.checkpoint import check_size, check_weights
from stylegan2.download import sha256_file
from stylegan2.errors import CheckpointError
from stylegan2.loaded import LoadedGenerator
from stylegan2.nvidia_pickle import (
    DEFAULT_MAX_BYTES,
    NetworkRecord,
    NvidiaPickle,
    UnreadablePickleError,
    read_nvidia_pickle,
)
from stylegan2.nvidia_stylegan2 import CONVERTERS

AVERAGED = {"pytorch": "G_ema", "tensorflow": "Gs"}  # the network each framework draws with
STYLEGAN3_MODULE = "training.networks_stylegan3"


def family_of(record: NetworkRecord) -> str:
    """'stylegan3' for NVIDIA's training.networks_stylegan3 Generator, else 'stylegan2'."""
    return "stylegan3" if record.module == STYLEGAN3_MODULE else "stylegan2"


def generator_record(pkl: NvidiaPickle, where: str) -> tuple[str, NetworkRecord]:
    """(its key, the averaged generator) of a read pickle."""
    key = AVERAGED[pkl.framework]
    record = pkl.networks.get(key)
    if record is None:
        raise CheckpointError(
            f"{where}: no {key} generator in the pickle (it holds {', '.join(pkl.networks)}); "
            f"the averaged generator {key} is the one that draws"
        )
    return key, record


def load_nvidia(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    name: str | None = None,  # the registry name it was resolved from, if any
    expected_size: int | None = None,  # refuse another resolution (a registry entry's)
    check_values: bool = False,  # refuse other dtypes than float32/16/bf16, NaN and inf
    max_bytes: int = DEFAULT_MAX_BYTES,  # refuse larger files before reading
) -> LoadedGenerator:
    """Read an NVIDIA pickle as data and build its averaged generator.

    Raises:
        CheckpointError: too large, unreadable, code or an unknown class in the file (named),
            no G_ema/Gs, or an architecture we do not compute (the argument is named).
    """
    path = Path(path)
    where = str(path)
    try:
        pkl = read_nvidia_pickle(path, max_bytes=max_bytes)
    except UnreadablePickleError as exc:
        raise CheckpointError(
            f"{where} is not a PyTorch checkpoint nor a readable NVIDIA pickle ({exc.reason})"
        ) from None
    key, record = generator_record(pkl, where)
    if check_values:
        check_weights(record.state_dict, where)
    family = family_of(record)
    if family == "stylegan2":
        weights = CONVERTERS[pkl.framework](record, where)
        generator: Any = weights.generator
        latent_avg = weights.latent_avg
        architecture = weights.config.describe()
        size = weights.config.size
    else:
        generator = _stylegan3(record, where)
        latent_avg = record.state_dict["mapping.w_avg"].detach().float().reshape(-1).clone()
        size = int(generator.resolution)
        architecture = {"size": size, "style_dim": int(generator.w_dim)}
    check_size(where, name, expected_size, size)
    identity = {
        "name": name,
        "path": str(path.resolve()),
        "sha256": sha256_file(path),
        **architecture,
        "seed": None,
        "family": family,
        "format": f"nvidia-{pkl.framework}",
        "network": key,
    }
    metadata = {
        "nvidia": {
            "framework": pkl.framework,
            "network": key,
            "class_name": record.class_name,
            "init_kwargs": plain_data(record.init_kwargs),
            "training_set_kwargs": plain_data(pkl.extra.get("training_set_kwargs")),
        }
    }
    return LoadedGenerator(
        generator=generator.to(device).eval(),
        latent_avg=latent_avg.to(device),
        identity=identity,
        metadata=metadata,
    )


def _stylegan3(record: NetworkRecord, where: str) -> Any:
    """StyleGAN3's builder, imported only when a file needs it."""
    try:
        builder = importlib.import_module("stylegan2.stylegan3").from_nvidia
    except (ImportError, AttributeError):
        raise CheckpointError(
            f"{where}: a StyleGAN3 generator, but stylegan2.stylegan3.from_nvidia is not "
            "available in this installation"
        ) from None
    try:
        return builder(record, where)
    except ValueError as exc:  # CheckpointError, or an init argument it does not support
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{where}: {exc}") from None


def plain_data(value: Any) -> Any:
    """`value` as JSON-like data (numpy scalars and arrays as numbers and lists, tuples as
    lists); what is not data (a tensor, a record) becomes its type name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain_data(v) for v in value]
    if isinstance(value, Tensor):
        return f"<tensor {list(value.shape)}>"
    return f"<{type(value).__name__}>"

"""Reading and writing generator checkpoints in rosinality/stylegan2-pytorch's .pt layout.

A file is a `torch.save`d dict with `g_ema` (the generator's state dict) and usually
`latent_avg` ([style_dim]). Training checkpoints also carry `g`, `d`, `g_optim`, `d_optim`,
`ada_aug_p` and `args` (an `argparse.Namespace`). Files we write add `metadata`: plain data
that says what the weights are and where they came from.

Loading never runs code from the file: `torch.load(weights_only=True)`, with
`argparse.Namespace` -- an attribute bag -- as the only class allowed beyond tensors and
plain containers. `load_untrusted` (the upload check, stylegan2/validate.py) also refuses
weights of another dtype than float32/float16/bfloat16 and NaN/inf values, naming the key.

A plain pickle (not torch.save's: NVIDIA's .pkl of StyleGAN2-ADA, StyleGAN3 or TensorFlow,
whatever its name) is recognised by its first bytes and read as data by
stylegan2/nvidia_load.py, under the same rules.

    >>> loaded = load_generator("ffhq-1024", device="cuda")      # registry name
    >>> loaded = load_generator("runs/sketch/generator.pt")       # a file
    >>> loaded = load_generator("network-snapshot-000200.pkl")    # NVIDIA's pickle
    >>> loaded = load_generator("random-256")                     # seeded, no download
    >>> ws = loaded.to_wplus(z, truncation=0.7)                   # the contract: loaded.py
    >>> image = loaded.render_wplus(ws)
"""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import pickle
import pickletools
import re
import threading
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nada.rundir import atomic_open
from stylegan2 import registry, sniff
from stylegan2.architecture import GeneratorConfig, check_shapes, infer_config
from stylegan2.download import remember_digest, sha256_file
from stylegan2.errors import CheckpointError
from stylegan2.loaded import LoadedGenerator
from stylegan2.metadata import plain_metadata
from stylegan2.model import Generator

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of the 'metadata' -> 'stylegan2' block save_generator writes
RANDOM_SEED = 0  # weights of 'random-<size>' generators
MEAN_LATENT_SAMPLES = 4096  # z samples averaged when a file has no latent_avg
MEAN_LATENT_SEED = 0  # ... drawn from this seed, so the result is deterministic
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # the first value of a legacy torch.save file
_LOAD_LOCK = threading.Lock()
# What load_untrusted accepts; each converts to the generator's float32 without loss.
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# -- reading ------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """`torch.load` a file safely (CPU tensors), translating failures into CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint file: {path}")
    try:
        head = sniff.read_head(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    reason = sniff.not_torch_reason(head)
    if reason is not None:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({reason})")
    try:
        # safe_globals edits a process-wide allow-list; the lock keeps one thread's exit
        # from removing Namespace while another thread is still loading.
        with _LOAD_LOCK, torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _UNSAFE_GLOBAL.search(str(exc))
        if unsafe:
            raise CheckpointError(_unsafe_message(path, unsafe.group(1))) from None
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (unreadable pickle)") from None
    except (EOFError, RuntimeError) as exc:  # truncated pickle / broken zip archive
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (truncated or corrupted: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
        ) from None
    except Exception as exc:  # torch.load reports other damage in many ways
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def _is_plain_pickle(path: Path) -> bool:
    """Whether `path` is a pickle that torch.save did not write (an NVIDIA .pkl): a pickle
    whose first value is not the legacy torch.save magic number. Unreadable files are left
    to read_checkpoint, which says why."""
    try:
        head = sniff.read_head(path)
    except OSError:
        return False
    if not head.startswith(sniff.PICKLE_PROTO):
        return False
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name not in ("PROTO", "FRAME"):
                return not (opcode.name in ("LONG1", "LONG4") and arg == _LEGACY_TORCH_MAGIC)
    except ValueError:  # a head that ends mid-opcode, or not a pickle at all
        pass
    return True


def _unsafe_message(path: Path, name: str) -> str:
    hint = ""
    if name.split(".")[0] in ("dnnlib", "torch_utils"):
        hint = (
            " This looks like NVIDIA's networks saved with torch.save: load_generator reads "
            "NVIDIA's own .pkl files (their pickle.dump) as data."
        )
    return (
        f"refusing to load {path}: it contains a pickled Python object ({name}) that could "
        "run code when unpickled; only tensors, plain containers and argparse.Namespace are "
        f"loaded.{hint}"
    )


def _unpack(ckpt: Any, where: str) -> tuple[dict[str, Tensor], Tensor | None, dict[str, Any], Any]:
    """(generator state dict, latent_avg or None, metadata, training args or None)."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{where}: expected a dict with a 'g_ema' generator state dict, found a "
            f"{type(ckpt).__name__}"
        )
    if "g_ema" in ckpt:
        state = ckpt["g_ema"]
    elif "style.1.weight" in ckpt:  # the file is the generator's state dict itself
        state = ckpt
    else:
        keys = ", ".join(map(str, list(ckpt)[:8])) + (", ..." if len(ckpt) > 8 else "")
        hint = ""
        if {"G_ema", "G", "D"} & set(ckpt):
            hint = (
                "; this looks like NVIDIA's StyleGAN2-ADA networks saved with torch.save: "
                "load_generator reads NVIDIA's own .pkl files"
            )
        elif all(isinstance(v, Tensor) for v in ckpt.values()):
            hint = "; it is a state dict, but not of a StyleGAN2 generator in rosinality's layout"
        raise CheckpointError(
            f"{where}: no 'g_ema' generator in the checkpoint (keys: {keys}){hint}"
        )
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{where}: 'g_ema' is not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}

    latent_avg = ckpt.get("latent_avg") if state is not ckpt else None
    if latent_avg is not None and not isinstance(latent_avg, Tensor):
        raise CheckpointError(
            f"{where}: 'latent_avg' is a {type(latent_avg).__name__}, not a tensor"
        )
    metadata = ckpt.get("metadata") if state is not ckpt else None
    return state, latent_avg, metadata if isinstance(metadata, dict) else {}, ckpt.get("args")


def _latent_avg(value: Tensor, style_dim: int, where: str) -> Tensor:
    """Accept [D], [1, D] or [n_latent, D] with identical rows; return [D] float32."""
    if value.ndim in (1, 2) and value.shape[-1] == style_dim:
        rows = value.float().reshape(-1, style_dim)
        if torch.allclose(rows, rows[:1].expand_as(rows)):
            return rows[0].clone()
        if not bool(torch.isfinite(rows).all()):  # NaN is never close to itself
            raise CheckpointError(f"{where}: 'latent_avg' holds NaN or infinite values")
        raise CheckpointError(
            f"{where}: 'latent_avg' is {list(value.shape)} with rows that differ (expected "
            f"[{style_dim}], or rows that are all the same)"
        )
    raise CheckpointError(
        f"{where}: wrong shape for 'latent_avg': {list(value.shape)} (expected [{style_dim}])"
    )


def check_weights(tensors: dict[str, Tensor], where: str) -> None:
    """Every tensor dense, of a WEIGHT_DTYPES dtype, and finite; else name the first that is not.

    Loading copies a state dict into float32 parameters whatever its dtype (an int64 tensor
    is cast without a word), so a file from outside is checked before that."""
    *others, last = (_dtype_name(d) for d in WEIGHT_DTYPES)
    allowed = f"{', '.join(others)} or {last}"
    for key, value in tensors.items():
        if value.layout != torch.strided:
            raise CheckpointError(
                f"{where}: weight {key!r} is a {str(value.layout).removeprefix('torch.')} "
                "tensor; weights must be dense"
            )
        if value.dtype not in WEIGHT_DTYPES:
            raise CheckpointError(
                f"{where}: weight {key!r} has dtype {_dtype_name(value.dtype)}; weights must be "
                f"{allowed}"
            )
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{where}: weight {key!r} holds NaN or infinite values")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def compute_mean_latent(generator: Generator, n: int = MEAN_LATENT_SAMPLES) -> Tensor:
    """Mean w over `n` z drawn from a fixed seed: deterministic. [style_dim], on its device."""
    devices = [generator.input.input.device] if generator.input.input.is_cuda else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(MEAN_LATENT_SEED)
        return generator.mean_latent(n).reshape(-1).float()


def load_generator(
    path_or_name: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    seed: int | None = None,  # random-<size> only: weight seed (default RANDOM_SEED)
    style_dim: int | None = None,  # random-<size> only (default 512)
    n_mlp: int | None = None,  # random-<size> only (default 8)
    channel_multiplier: int | None = None,  # random-<size> only (default 2)
    progress: bool | None = None,  # download progress bar; None: when stderr is a tty
) -> LoadedGenerator:
    """Load a generator from a registry name, 'random-<size>', a .pt or an NVIDIA .pkl.

    Args:
        path_or_name: 'ffhq-1024' (see `nada models list`; downloaded into the cache and
            checksum-verified; an NVIDIA pickle entry is converted once into our layout
            there, stylegan2/converted.py), 'random-<size>' (size 8..1024, seeded weights, no file),
            a path to a rosinality-layout .pt (a training checkpoint works too), or to an
            NVIDIA pickle (stylegan2-ada-pytorch, stylegan3, TensorFlow stylegan2/-ada;
            read as data, its averaged generator G_ema / Gs).
        device: where the generator and latent_avg go.

    Returns:
        A LoadedGenerator: the generator in eval mode, its latent_avg (from the file, else
        the mean of 4096 mapped z from a fixed seed), its identity and the file's metadata.

    Raises:
        CheckpointError: the file is missing, not a torch file, holds code, or is not a
            StyleGAN2 generator (the message names the key or shape at fault).
        registry.UnknownGeneratorError: neither a known name nor an existing file.
        stylegan2.download.DownloadError / ChecksumError: fetching or verifying failed.

    Example:
        >>> loaded = load_generator("random-32", style_dim=64, n_mlp=2, channel_multiplier=1)
        >>> loaded.generator.size, loaded.latent_avg.shape
        (32, torch.Size([64]))
    """
    random_kwargs = dict(
        seed=seed, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier
    )
    name = path_or_name if isinstance(path_or_name, str) else None
    size = registry.parse_random_name(name) if name else None
    if size is not None:
        given = {k: v for k, v in random_kwargs.items() if v is not None}
        return random_generator(size, device=device, **given)
    if any(v is not None for v in random_kwargs.values()):
        passed = ", ".join(k for k, v in random_kwargs.items() if v is not None)
        raise ValueError(f"{passed} apply only to random-<size> generators (got {path_or_name!r})")

    if name is not None and name in registry.generator_names():
        # an NVIDIA pickle entry is converted once into the cache (stylegan2/converted.py)
        from stylegan2.converted import load_registered

        return load_registered(name, device, progress=progress)
    path = Path(path_or_name)
    if not path.exists() and name is not None and os.sep not in name and not path.suffix:
        registry.get_generator_info(name)  # raises UnknownGeneratorError listing the names
    return _load_file(path, device, name=None, expected_size=None)


def load_untrusted(path: str | os.PathLike[str]) -> LoadedGenerator:
    """`load_generator` for a file from outside the service (an upload), on the CPU, with
    its values checked too: every generator weight and `latent_avg` must be a dense
    float32, float16 or bfloat16 tensor (WEIGHT_DTYPES) holding no NaN or infinity.

    Raises:
        CheckpointError: as load_generator, or naming the key whose dtype or values are
            refused.
    """
    return _load_file(Path(path), "cpu", name=None, expected_size=None, check_values=True)


def check_size(where: str, name: str | None, expected: int | None, size: int) -> None:
    """Refuse a file whose generator is not the size its registry name promises."""
    if expected is not None and size != expected:
        raise CheckpointError(
            f"{where}: {name} should be a {expected} px generator, but the file holds a "
            f"{size} px one"
        )


def _load_file(
    path: Path,
    device: str | torch.device,
    *,
    name: str | None,
    expected_size: int | None,
    check_values: bool = False,  # refuse other dtypes and NaN/inf (load_untrusted)
) -> LoadedGenerator:
    where = str(path)
    if _is_plain_pickle(path):  # not torch.save's: NVIDIA's .pkl (read as data)
        from stylegan2.nvidia_load import load_nvidia

        return load_nvidia(path, device, name=name, expected_size=expected_size,
                           check_values=check_values)  # fmt: skip
    ckpt = read_checkpoint(path)
    from stylegan2 import domain_file  # here: it imports this module

    if isinstance(ckpt, dict) and ckpt.get("format") == domain_file.FORMAT:
        if check_values:  # an upload: a domain has no weights of its own
            raise CheckpointError(
                f"{where} is a domain file (a modulation run's domain.pt), not a generator; "
                "upload the generator `nada export` bakes from it"
            )
        return domain_file.load_baked(path, device)
    if _stylegan3().is_stylegan3_checkpoint(ckpt):  # our StyleGAN3 layout (its metadata says)
        return _load_stylegan3(ckpt, path, device, name, expected_size, check_values)
    state, latent_avg, metadata, args = _unpack(ckpt, where)
    if check_values:
        check_weights(state, where)
        if latent_avg is not None:
            check_weights({"latent_avg": latent_avg}, where)
    ours = metadata.get("stylegan2")
    hint = ours.get("channel_multiplier") if isinstance(ours, dict) else None
    hint = hint or getattr(args, "channel_multiplier", None)
    config = infer_config(
        state,
        channel_multiplier=hint if isinstance(hint, int) else None,
        **GeneratorConfig.hints(ours),
        where=where,
    )
    check_size(where, name, expected_size, config.size)
    generator = config.build()
    check_shapes(generator.state_dict(), state, config, where)
    generator.load_state_dict(state, strict=True)
    del ckpt, state
    if latent_avg is not None:
        latent_avg = _latent_avg(latent_avg, config.style_dim, where)
    else:
        log.info("%s has no latent_avg; averaging %d mapped z", where, MEAN_LATENT_SAMPLES)
        latent_avg = compute_mean_latent(generator)
    identity = {
        "name": name,
        "path": str(path.resolve()),
        "sha256": sha256_file(path),
        **config.describe(),
        "seed": None,
    }
    return LoadedGenerator(
        generator=generator.to(device).eval(),
        latent_avg=latent_avg.to(device),
        identity=identity,
        metadata=metadata,
    )


def _stylegan3() -> Any:
    """The StyleGAN3 family (stylegan2/stylegan3/), imported when a file needs it."""
    return importlib.import_module("stylegan2.stylegan3")


def _load_stylegan3(
    ckpt: Any,
    path: Path,
    device: str | torch.device,
    name: str | None,
    expected_size: int | None,
    check_values: bool,
) -> LoadedGenerator:
    """A StyleGAN3 checkpoint in our layout (stylegan2/stylegan3/checkpoint.py)."""
    where = str(path)
    if check_values:
        state = ckpt.get("g_ema")
        check_weights(state if isinstance(state, dict) else {}, where)
        if isinstance(ckpt.get("latent_avg"), Tensor):
            check_weights({"latent_avg": ckpt["latent_avg"]}, where)
    read = _stylegan3().read_stylegan3(ckpt, where)
    size = int(read.generator.resolution)
    check_size(where, name, expected_size, size)
    identity = {
        "name": name,
        "path": str(path.resolve()),
        "sha256": sha256_file(path),
        "family": "stylegan3",
        "size": size,
        "style_dim": int(read.generator.w_dim),
        "seed": None,
    }
    return LoadedGenerator(
        generator=read.generator.to(device).eval(),
        latent_avg=read.latent_avg.to(device),
        identity=identity,
        metadata=read.metadata,
    )


def random_generator(
    size: int,
    *,
    seed: int = RANDOM_SEED,  # the same seed gives the same weights (same code and torch)
    style_dim: int = 512,
    n_mlp: int = 8,
    channel_multiplier: int = 2,
    device: str | torch.device = "cpu",
) -> LoadedGenerator:
    """A generator with rosinality's initialisation drawn from `seed`: no file, no download.

    For tests and offline demos; what it draws is noise-like texture, not a domain.
    """
    if size not in registry.RANDOM_SIZES:
        raise ValueError(f"random generator size must be a power of two in 8..1024 (got {size})")
    config = GeneratorConfig(size, style_dim, n_mlp, channel_multiplier)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(size, style_dim, n_mlp, channel_multiplier)
    latent_avg = compute_mean_latent(generator)
    identity = {
        "name": f"random-{size}",
        "path": None,
        "sha256": None,
        **config.describe(),
        "seed": seed,
    }
    return LoadedGenerator(generator.to(device).eval(), latent_avg.to(device), identity, {})


# -- writing ------------------------------------------------------------------------------


def save_generator(
    path: str | os.PathLike[str],
    generator: nn.Module,
    latent_avg: Tensor,
    metadata: dict[str, Any],
) -> str:
    """Write `{'g_ema', 'latent_avg', 'metadata'}` atomically; return the file's hex sha256.

    `metadata` must be plain data (str, int, float, bool, None, list, dict with str keys;
    tuples become lists) and should say where the weights came from, e.g.
    `{"base": loaded.identity, "params": {...}}`. Its 'stylegan2' key is (re)written here
    with the architecture and format version. The file is a plain `torch.save` of tensors
    and builtins, so rosinality's own scripts load it too. A StyleGAN3 generator is written
    in its own layout (stylegan2.stylegan3.save_stylegan3), which load_generator reads too.
    """
    if not isinstance(generator, Generator):
        family = _stylegan3()
        if isinstance(generator, family.StyleGAN3Generator):
            digest: str = family.save_stylegan3(path, generator, metadata, latent_avg)
            return digest
    metadata = plain_metadata(metadata, "metadata")
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (got {type(metadata).__name__})")
    state = {k: v.detach().to("cpu").clone() for k, v in generator.state_dict().items()}
    config = infer_config(
        state,
        channel_multiplier=getattr(generator, "channel_multiplier", None),
        **_recorded_architecture(generator),
        where="generator",
    )
    latent_avg = _latent_avg(latent_avg.detach().to("cpu"), config.style_dim, "latent_avg")
    metadata["stylegan2"] = plain_metadata(
        {**config.describe(), "format_version": FORMAT_VERSION, "torch": torch.__version__},
        "metadata['stylegan2']",
    )

    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save({"g_ema": state, "latent_avg": latent_avg, "metadata": metadata}, f)
    digest = sha256_file(path)
    remember_digest(path, digest)
    return digest


def _recorded_architecture(generator: nn.Module) -> dict[str, Any]:
    """What infer_config cannot read off the weights (a channel table, conv_clamp, z_dim),
    from our Generator's own attributes."""
    if not isinstance(generator, Generator):
        return {}
    return GeneratorConfig.hints(GeneratorConfig.of(generator).describe())

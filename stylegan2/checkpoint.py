"""Reading and writing generator checkpoints in rosinality/stylegan2-pytorch's .pt layout.

A file is a `torch.save`d dict with `g_ema` (the generator's state dict) and usually
`latent_avg` ([style_dim]). Training checkpoints also carry `g`, `d`, `g_optim`, `d_optim`,
`ada_aug_p` and `args` (an `argparse.Namespace`). Files we write add `metadata`: plain data
that says what the weights are and where they came from.

Loading never runs code from the file: `torch.load(weights_only=True)`, with
`argparse.Namespace` -- an attribute bag -- as the only class allowed beyond tensors and
plain containers. `load_untrusted` (the upload check, stylegan2/validate.py) also refuses
weights of another dtype than float32/float16/bfloat16 and NaN/inf values, naming the key.

    >>> loaded = load_generator("ffhq-1024", device="cuda")      # registry name
    >>> loaded = load_generator("runs/sketch/generator.pt")       # a file
    >>> loaded = load_generator("random-256")                     # seeded, no download
    >>> image, _ = loaded.generator([z], truncation=0.7, truncation_latent=loaded.latent_avg)
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nada.rundir import atomic_open
from stylegan2 import registry, sniff
from stylegan2.download import remember_digest, sha256_file
from stylegan2.model import Generator, channels_for

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of the 'metadata' -> 'stylegan2' block save_generator writes
RANDOM_SEED = 0  # weights of 'random-<size>' generators
MEAN_LATENT_SAMPLES = 4096  # z samples averaged when a file has no latent_avg
MEAN_LATENT_SEED = 0  # ... drawn from this seed, so the result is deterministic
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_STYLE_WEIGHT = re.compile(r"style\.\d+\.weight")
_LOAD_LOCK = threading.Lock()
# What load_untrusted accepts; each converts to the generator's float32 without loss.
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class CheckpointError(ValueError):
    """A file that is not a usable generator checkpoint; the message says what is wrong."""


@dataclass(frozen=True)
class GeneratorConfig:
    """The constructor arguments that decide a generator's state-dict shapes."""

    size: int  # output resolution in pixels
    style_dim: int = 512  # width of z and w
    n_mlp: int = 8  # layers in the mapping network
    channel_multiplier: int = 2  # channel widths at 64 px and above

    def build(self) -> Generator:
        """A freshly initialised Generator on the CPU (the global RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            return Generator(self.size, self.style_dim, self.n_mlp, self.channel_multiplier)


@dataclass(frozen=True)
class LoadedGenerator:
    """What `load_generator` returns."""

    generator: Generator  # eval mode, on the requested device
    latent_avg: Tensor  # [style_dim] mean w (the truncation centre), same device
    identity: dict[str, Any]  # plain data: name, path, sha256, size, channel_multiplier, ...
    metadata: dict[str, Any] = field(default_factory=dict)  # the file's own 'metadata', or {}


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


def _unsafe_message(path: Path, name: str) -> str:
    hint = ""
    if name.split(".")[0] in ("dnnlib", "torch_utils"):
        hint = (
            " This looks like an NVIDIA StyleGAN2(-ADA) .pkl: convert it to the .pt layout "
            "with convert_weight.py from rosinality/stylegan2-pytorch."
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
                "; this looks like NVIDIA's StyleGAN2-ADA format: convert it with "
                "convert_weight.py from rosinality/stylegan2-pytorch"
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


def infer_config(
    state: dict[str, Tensor], *, channel_multiplier: int | None = None, where: str = "checkpoint"
) -> GeneratorConfig:
    """Read size, style_dim, n_mlp and channel_multiplier off a generator state dict.

    size and n_mlp come from how many to_rgbs / style layers there are. style_dim and
    channel_multiplier are each read off every tensor that shows them and the majority wins,
    so a single tensor of the wrong shape is blamed on its own key (by the shape check that
    follows) rather than on the many keys that then disagree with it. Below 64 px every
    channel multiplier gives the same shapes; `channel_multiplier` (from the file's
    metadata or training args) is used there, else rosinality's default 2.
    """
    for key in ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight"):
        if key not in state:
            raise CheckpointError(
                f"{where}: not a StyleGAN2 generator in rosinality's layout (missing {key!r})"
            )
    # The mapping layers are [style_dim, style_dim], every modulation [channels, style_dim].
    style_dim = _majority(
        [
            v.shape[1]
            for k, v in state.items()
            if v.ndim == 2 and (_STYLE_WEIGHT.fullmatch(k) or k.endswith(".modulation.weight"))
        ]
    )
    if not style_dim:
        style = state["style.1.weight"]
        raise CheckpointError(
            f"{where}: wrong shape for 'style.1.weight': {list(style.shape)} (expected a square "
            "[style_dim, style_dim] matrix)"
        )
    n_mlp = _count_indexed(state, "style.{}.weight", start=1, where=where)
    n_rgb = _count_indexed(state, "to_rgbs.{}.conv.weight", start=0, where=where)
    size = 2 ** (n_rgb + 2)
    if not 8 <= size <= 1024:
        raise CheckpointError(f"{where}: {n_rgb} to_rgbs layers means {size} px; 8..1024 supported")
    if size >= 64:  # feature maps at r >= 64 px are channels_for(1)[r] * channel_multiplier
        channel_multiplier = _majority(_channel_multipliers(state, n_rgb))
        if not channel_multiplier:
            last = state[f"to_rgbs.{n_rgb - 1}.conv.weight"]
            raise CheckpointError(
                f"{where}: wrong shape for 'to_rgbs.{n_rgb - 1}.conv.weight': "
                f"{list(last.shape)} (expected [1, 3, {channels_for(1)[size]} * "
                "channel_multiplier, 1, 1])"
            )
    return GeneratorConfig(size, style_dim, n_mlp, int(channel_multiplier or 2))


def _channel_multipliers(state: dict[str, Tensor], n_rgb: int) -> list[int]:
    """The channel multiplier each layer at 64 px and above implies (those that imply one)."""
    base = channels_for(1)
    found = []
    for i in range(n_rgb):  # to_rgbs.i and convs.2i, convs.2i+1 work at 2**(i+3) px
        res = 2 ** (i + 3)
        if res < 64:
            continue
        for key, dim in (
            (f"to_rgbs.{i}.conv.weight", 2),  # [1, 3, in_channels, 1, 1]
            (f"convs.{2 * i}.conv.weight", 1),  # [1, out_channels, in_channels, 3, 3]
            (f"convs.{2 * i + 1}.conv.weight", 1),
        ):
            weight = state.get(key)
            if weight is not None and weight.ndim == 5 and weight.shape[dim] % base[res] == 0:
                found.append(weight.shape[dim] // base[res])
    return found


def _majority(votes: list[int]) -> int | None:
    """The most common value (the first seen among equally common ones); None if no votes."""
    return Counter(votes).most_common(1)[0][0] if votes else None


def _count_indexed(state: dict[str, Tensor], template: str, *, start: int, where: str) -> int:
    """How many keys `template.format(i)` exist for i = start, start+1, ... (no gaps)."""
    pattern = re.escape(template).replace(r"\{\}", r"(\d+)")
    found = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k)))
    if not found or found != list(range(start, start + len(found))):
        numbers = ", ".join(map(str, found[:10])) or "none"
        raise CheckpointError(
            f"{where}: the {template.format('N')} keys must be numbered from {start} without "
            f"gaps (found {numbers})"
        )
    return len(found)


def _check_shapes(
    expected: dict[str, Tensor], state: dict[str, Tensor], config: GeneratorConfig, where: str
) -> None:
    what = (
        f"a {config.size} px generator (style_dim {config.style_dim}, n_mlp {config.n_mlp}, "
        f"channel_multiplier {config.channel_multiplier})"
    )
    for key, want in expected.items():
        if key in state and state[key].shape != want.shape:
            raise CheckpointError(
                f"{where}: wrong shape for {key!r}: the file has {list(state[key].shape)}, "
                f"{what} needs {list(want.shape)}"
            )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    for keys, problem in ((missing, "is missing"), (unexpected, "has unexpected")):
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            raise CheckpointError(f"{where}: {problem} keys for {what}: {shown}")


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


def _check_values(tensors: dict[str, Tensor], where: str) -> None:
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
    """Load a generator from a registry name, 'random-<size>', or a .pt path.

    Args:
        path_or_name: 'ffhq-1024' (see `nada models list`; downloaded into the cache and
            checksum-verified), 'random-<size>' (size 8..1024, seeded weights, no file),
            or a path to a rosinality-layout .pt (a training checkpoint works too).
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
        info = registry.get_generator_info(name)
        path = registry.resolve(name, progress=progress)
        return _load_file(path, device, name=name, expected_size=info.size)
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


def _load_file(
    path: Path,
    device: str | torch.device,
    *,
    name: str | None,
    expected_size: int | None,
    check_values: bool = False,  # refuse other dtypes and NaN/inf (load_untrusted)
) -> LoadedGenerator:
    where = str(path)
    ckpt = read_checkpoint(path)
    state, latent_avg, metadata, args = _unpack(ckpt, where)
    if check_values:
        _check_values(state, where)
        if latent_avg is not None:
            _check_values({"latent_avg": latent_avg}, where)
    ours = metadata.get("stylegan2")
    hint = ours.get("channel_multiplier") if isinstance(ours, dict) else None
    hint = hint or getattr(args, "channel_multiplier", None)
    config = infer_config(
        state, channel_multiplier=hint if isinstance(hint, int) else None, where=where
    )
    if expected_size is not None and config.size != expected_size:
        raise CheckpointError(
            f"{where}: {name} should be a {expected_size} px generator, but the file holds a "
            f"{config.size} px one"
        )
    generator = config.build()
    _check_shapes(generator.state_dict(), state, config, where)
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
        **asdict(config),
        "seed": None,
    }
    return LoadedGenerator(
        generator=generator.to(device).eval(),
        latent_avg=latent_avg.to(device),
        identity=identity,
        metadata=metadata,
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
        **asdict(config),
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
    and builtins, so rosinality's own scripts load it too.
    """
    metadata = _plain(metadata, "metadata")
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (got {type(metadata).__name__})")
    state = {k: v.detach().to("cpu").clone() for k, v in generator.state_dict().items()}
    config = infer_config(
        state, channel_multiplier=getattr(generator, "channel_multiplier", None), where="generator"
    )
    latent_avg = _latent_avg(latent_avg.detach().to("cpu"), config.style_dim, "latent_avg")
    metadata["stylegan2"] = _plain(
        {**asdict(config), "format_version": FORMAT_VERSION, "torch": torch.__version__},
        "metadata['stylegan2']",
    )

    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save({"g_ema": state, "latent_avg": latent_avg, "metadata": metadata}, f)
    digest = sha256_file(path)
    remember_digest(path, digest)
    return digest


def _plain(value: Any, where: str) -> Any:
    """A copy of `value` checked to be plain data (what weights_only loading accepts)."""
    # Exact builtins only: a subclass (an Enum member, say) pickles as its class, which
    # weights_only loading refuses. str/int/float/bool subclasses are converted.
    plain: type[Any]
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return plain.__new__(plain, value) if plain is not bool else bool(value)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}; metadata keys must be str")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise ValueError(
        f"{where} is a {type(value).__name__}; metadata may hold only str, int, float, bool, "
        "None, list and dict"
    )

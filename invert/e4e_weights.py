"""e4e's weights: the seeded recipe of the reference data, random encoders for tests, and the
published checkpoint layout (`{'state_dict': {'encoder.*', 'decoder.*'}, 'latent_avg',
'opts'}`) read with `weights_only=True` and written back.

    >>> e4e = load_e4e("e4e-ffhq")                                 # registry name or a path
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from invert import weights
from invert.e4e import (
    E4E,
    STAGE_UNITS,
    STYLE_DIM,
    Encoder4Editing,
    EncoderError,
    n_styles_for,
)
from nada.rundir import atomic_open
from stylegan2.checkpoint import CheckpointError, read_checkpoint

log = logging.getLogger(__name__)
_BODY_KEY = re.compile(r"body\.(\d+)\.")
_STYLE_KEY = re.compile(r"styles\.(\d+)\.")


# -- weights ------------------------------------------------------------------------------


def seeded_state_dict(
    keys_shapes: Iterable[tuple[str, Sequence[int]]], seed: int, prelu_keys: Collection[str]
) -> dict[str, Tensor]:
    """Deterministic encoder weights (tests/data/reference/README.md): walk the keys
    in order with one seeded generator, scaling each draw so activations stay finite."""
    g = torch.Generator().manual_seed(seed)
    prelu = set(prelu_keys)
    state: dict[str, Tensor] = {}
    for key, raw_shape in keys_shapes:
        shape = tuple(int(s) for s in raw_shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
            continue
        t = torch.randn(shape, generator=g)
        if key.endswith("running_var"):
            t = 1 + 0.1 * t.abs()
        elif key.endswith("running_mean") or key.endswith(".bias"):
            t = 0.1 * t
        elif len(shape) == 4:  # convolution weight: unit fan-in variance
            t = t / math.sqrt(shape[1] * shape[2] * shape[3])
        elif len(shape) == 1:
            t = 0.25 + 0.05 * t if key in prelu else 1 + 0.1 * t  # PReLU slope / BN weight
        state[key] = t  # else a 2-D EqualLinear weight, scaled at run time
    return state


def _skeleton(num_layers: int, mode: str, stylegan_size: int) -> Encoder4Editing:
    """The module on the meta device: its state-dict layout without allocating ~1 GB."""
    with torch.device("meta"):
        return Encoder4Editing(num_layers, mode, stylegan_size)


def random_e4e(
    stylegan_size: int = 1024, seed: int = 0, *, device: str | torch.device = "cpu"
) -> E4E:
    """A random-weight encoder from `seeded_state_dict` (tests, benchmarks, no download).

    latent_avg is a separate seeded draw (seed + 1) of N(0, 0.1^2), [n_styles, 512].
    """
    encoder = _skeleton(50, "ir_se", stylegan_size)
    layout = [(k, tuple(v.shape)) for k, v in encoder.state_dict().items()]
    prelu = [f"{n}.weight" for n, m in encoder.named_modules() if isinstance(m, nn.PReLU)]
    encoder.load_state_dict(seeded_state_dict(layout, seed, prelu), strict=True, assign=True)
    g = torch.Generator().manual_seed(seed + 1)
    latent_avg = torch.randn(encoder.n_styles, STYLE_DIM, generator=g) * 0.1
    return E4E(encoder.to(device), latent_avg, "random")


def _locate(source: str | os.PathLike[str]) -> tuple[Path, str]:
    """A registry name -> its verified cached file; anything else is a path."""
    if isinstance(source, str) and source in {w.name for w in weights.list_weights()}:
        return weights.resolve(source), source
    path = Path(source)
    if isinstance(source, str) and not path.exists() and os.sep not in source and not path.suffix:
        weights.get_weights_info(source)  # raises UnknownWeightsError listing the names
    return path, str(path)


def _few(items: Iterable[str], n: int = 5) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _split_layout(ckpt: Any, where: str) -> tuple[dict[str, Tensor], Tensor, dict[str, Any]]:
    """(encoder state dict, latent_avg, opts) from e4e's layout or {'encoder', 'latent_avg'}."""
    if not isinstance(ckpt, dict):
        raise EncoderError(f"{where} is not an e4e checkpoint: it holds a {type(ckpt).__name__}")
    if isinstance(ckpt.get("state_dict"), Mapping):
        # decoder.* (the generator e4e was trained with) and anything else is not ours.
        prefix = "encoder."
        sd = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        if not sd:
            raise EncoderError(
                f"{where} has no encoder.* weights in its state_dict "
                f"(keys: {_few(map(str, ckpt['state_dict']))})"
            )
    elif isinstance(ckpt.get("encoder"), Mapping):
        sd = dict(ckpt["encoder"])
    else:
        raise EncoderError(
            f"{where} is not an e4e checkpoint: no 'state_dict' with encoder.* keys and no "
            f"'encoder' (top-level keys: {_few(map(str, ckpt))})"
        )
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad:
        raise EncoderError(f"{where}: encoder entries that are not tensors: {_few(bad)}")
    if ckpt.get("latent_avg") is None:
        raise EncoderError(
            f"{where} has no latent_avg (the mean W+ the encoder's codes are offsets from)"
        )
    if not isinstance(ckpt["latent_avg"], Tensor):
        raise EncoderError(f"{where}: latent_avg is a {type(ckpt['latent_avg']).__name__}")
    opts = ckpt.get("opts") or {}
    opts = vars(opts) if isinstance(opts, argparse.Namespace) else opts
    return sd, ckpt["latent_avg"], opts if isinstance(opts, dict) else {}


def _architecture(
    sd: Mapping[str, Tensor], opts: Mapping[str, Any], stylegan_size: int | None, where: str
) -> tuple[int, str, int]:
    """(num_layers, mode, stylegan_size) of a state dict, checked against opts/the caller."""
    units = len({int(m.group(1)) for k in sd if (m := _BODY_KEY.match(k))})
    depth = {sum(u): n for n, u in STAGE_UNITS.items()}.get(units)
    if depth is None:
        raise EncoderError(f"{where}: {units} backbone units is not an IR-SE-50/100/152 encoder")
    mode = "ir_se" if any(".res_layer.5.fc1." in k for k in sd) else "ir"
    n_file = len({int(m.group(1)) for k in sd if (m := _STYLE_KEY.match(k))})
    if stylegan_size is not None:
        size, said = stylegan_size, "the stylegan_size argument"
    elif "stylegan_size" in opts:
        size, said = int(opts["stylegan_size"]), "the file's opts"
    else:
        size, said = 2 ** ((n_file + 2) // 2), "its style blocks"
    try:
        expected = n_styles_for(size)
    except ValueError as exc:
        raise EncoderError(f"{where}: {exc} (from {said})") from None
    if expected != n_file:
        raise EncoderError(
            f"{where}: the encoder has {n_file} style blocks, but stylegan_size {size} "
            f"(from {said}) needs {expected}"
        )
    return depth, mode, size


def _build(
    sd: dict[str, Tensor], num_layers: int, mode: str, size: int, where: str
) -> Encoder4Editing:
    """Load `sd` strictly into a fresh encoder, naming missing, extra and misshapen keys."""
    encoder = _skeleton(num_layers, mode, size)
    want = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    missing, extra = want.keys() - sd.keys(), sd.keys() - want.keys()
    if missing or extra:
        parts = [
            f"missing {_few(missing)}" if missing else "",
            f"unexpected {_few(extra)}" if extra else "",
        ]
        raise EncoderError(
            f"{where}: encoder keys do not match e4e's: {'; '.join(filter(None, parts))}"
        )
    wrong = [
        f"{k} {list(sd[k].shape)} (expected {list(s)})"
        for k, s in want.items()
        if tuple(sd[k].shape) != s
    ]
    if wrong:
        raise EncoderError(f"{where}: encoder weights of the wrong shape: {_few(wrong, 3)}")
    # float32 copies (files may hold halves); num_batches_tracked stays an integer.
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    encoder.load_state_dict(sd, strict=True, assign=True)
    return encoder


def load_e4e(
    source: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    stylegan_size: int | None = None,  # None: from opts['stylegan_size'], else the style count
) -> E4E:
    """Load an e4e encoder from a registered weights name ('e4e-ffhq') or a file.

    Args:
        source: a name from invert.weights (resolved, downloaded once and verified), or a
            path to e4e's published layout {'state_dict': {'encoder.*', 'decoder.*'},
            'latent_avg', 'opts'} (decoder.* is ignored) or {'encoder': sd, 'latent_avg'}.
        device: where the encoder and latent_avg go.
        stylegan_size: the generator size the codes are for, when the file does not say.

    Returns:
        An E4E (encoder in eval mode, frozen; latent_avg [n_styles, 512]).

    Raises:
        EncoderError: unreadable file, not a dict, missing/unexpected encoder keys, wrong
            shapes, no latent_avg, a style count that does not fit stylegan_size.
        invert.weights.UnknownWeightsError: neither a registered name nor an existing file.
    """
    path, label = _locate(source)
    try:
        ckpt = read_checkpoint(path)  # torch.load(weights_only=True, map_location='cpu')
    except CheckpointError as exc:
        raise EncoderError(str(exc)) from None
    sd, latent_avg, opts = _split_layout(ckpt, str(path))
    num_layers, mode, size = _architecture(sd, opts, stylegan_size, str(path))
    encoder = _build(sd, num_layers, mode, size, str(path))
    log.debug("loaded e4e (IR-%s-%d, %d styles) from %s", mode, num_layers, encoder.n_styles, path)
    return E4E(encoder.to(device), latent_avg, label)


def save_e4e_checkpoint(
    e4e: E4E,
    path: str | os.PathLike[str],
    *,
    decoder_state: Mapping[str, Tensor] | None = None,  # a generator's, stored as decoder.*
    opts: Mapping[str, Any] | None = None,  # merged over {'encoder_type', 'stylegan_size'}
) -> None:
    """Write e4e's published layout (loadable by e4e's own code and by `load_e4e`), plain
    tensors and dicts only, so `torch.load(weights_only=True)` reads it."""
    encoder = e4e.encoder
    full_opts = {"encoder_type": "Encoder4Editing", "stylegan_size": encoder.stylegan_size}
    full_opts.update(opts or {})
    if full_opts["stylegan_size"] != encoder.stylegan_size:
        raise ValueError(
            f"opts['stylegan_size'] is {full_opts['stylegan_size']}, but the encoder is for "
            f"{encoder.stylegan_size}"
        )
    state = {f"encoder.{k}": v.detach().cpu() for k, v in encoder.state_dict().items()}
    state.update({f"decoder.{k}": v.detach().cpu() for k, v in (decoder_state or {}).items()})
    payload = {
        "state_dict": state,
        "latent_avg": e4e.latent_avg.detach().cpu(),
        "opts": full_opts,
        "metadata": {  # not e4e's: says what this file is without loading it
            "format": "e4e",
            "num_layers": encoder.num_layers,
            "mode": encoder.mode,
            "n_styles": encoder.n_styles,
            "source": e4e.source,
        },
    }
    with atomic_open(Path(path), "wb") as f:
        torch.save(payload, f)

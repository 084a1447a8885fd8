"""NVIDIA's StyleGAN3 generator, read as data (stylegan2/nvidia_pickle.py), as ours.

The file stores the constructor arguments, every parameter and buffer, and each module's
plain attributes; NVIDIA's code (which the file also carries, and which we never run) is
replaced by ours. So that "ours" really is the network the file describes, every attribute
our layout derives (sizes, channels, sampling rates, cutoffs, paddings, filter taps, gains)
is compared with the one the file stored, and a file whose architecture differs (a modified
copy of NVIDIA's code) is refused by name instead of computed wrongly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from stylegan2.errors import CheckpointError
from stylegan2.stylegan3.generator import StyleGAN3Generator, plain_init_kwargs
from stylegan2.stylegan3.layout import GeneratorConfig

if TYPE_CHECKING:
    from stylegan2.nvidia_pickle import NetworkRecord

STYLEGAN3_MODULE = "training.networks_stylegan3"

# Attributes of NVIDIA's SynthesisLayer that LayerSpec also holds (same names).
_LAYER_ATTRS = (
    "is_torgb", "is_critically_sampled", "in_channels", "out_channels", "in_size", "out_size",
    "in_sampling_rate", "out_sampling_rate", "tmp_sampling_rate", "in_cutoff", "out_cutoff",
    "in_half_width", "out_half_width", "conv_kernel", "up_factor", "up_taps", "down_factor",
    "down_taps", "down_radial", "padding",
)  # fmt: skip


def from_nvidia(record: NetworkRecord, where: str = "the pickle") -> StyleGAN3Generator:
    """Our StyleGAN3Generator with the weights and buffers of NVIDIA's `G_ema` record.

    Raises:
        CheckpointError: not a StyleGAN3 Generator, an architecture that differs from what
            its init_kwargs give (the attribute is named), or missing, unexpected or
            misshapen weights.
        ValueError: an init argument we do not support (named).
    """
    if record.module != STYLEGAN3_MODULE or record.class_name != "Generator":
        raise CheckpointError(
            f"{where}: expected NVIDIA's {STYLEGAN3_MODULE}.Generator, got "
            f"{record.module}.{record.class_name}"
        )
    try:
        init_kwargs = plain_init_kwargs(record.init_kwargs)
    except TypeError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    config = GeneratorConfig.from_init_kwargs(init_kwargs)
    with torch.random.fork_rng(devices=[]):
        generator = StyleGAN3Generator(config, init_kwargs=init_kwargs)
    _check_attributes(generator, record.attrs, where)
    load_weights(generator, record.state_dict, where)
    return generator.eval()


def _check_attributes(
    generator: StyleGAN3Generator, attrs: dict[str, dict[str, Any]], where: str
) -> None:
    synthesis = generator.synthesis
    expected: dict[str, dict[str, Any]] = {
        "": {"num_ws": generator.num_ws, "z_dim": generator.z_dim, "w_dim": generator.w_dim},
        "synthesis": {
            "num_ws": synthesis.num_ws,
            "layer_names": synthesis.layer_names,
            "output_scale": synthesis.output_scale,
        },
        "synthesis.input": {
            "channels": synthesis.input.channels,
            "size": synthesis.input.size,
            "sampling_rate": synthesis.input.sampling_rate,
            "bandwidth": synthesis.input.bandwidth,
        },
        "mapping": {"num_ws": generator.mapping.num_ws, "num_layers": generator.mapping.num_layers},
    }
    for name in synthesis.layer_names:
        layer = getattr(synthesis, name)
        expected[f"synthesis.{name}"] = {
            **{key: getattr(layer.spec, key) for key in _LAYER_ATTRS},
            "conv_clamp": layer.conv_clamp,
        }
    for path, module in generator.named_modules():
        if hasattr(module, "weight_gain"):  # FullyConnectedLayer
            expected[path] = {
                "weight_gain": module.weight_gain,
                "bias_gain": module.bias_gain,
                "activation": module.activation,
            }
    for path, wanted in expected.items():
        stored = attrs.get(path)
        if stored is None:
            raise CheckpointError(
                f"{where}: the file has no {path or 'root'} module of a StyleGAN3 generator"
            )
        for key, value in wanted.items():
            if key in stored and not _same(stored[key], value):
                raise CheckpointError(
                    f"{where}: {path or 'the generator'}.{key} is {_show(stored[key])} in the "
                    f"file but {_show(value)} for its init_kwargs: an architecture we do not "
                    "compute (a modified StyleGAN3)"
                )


def _same(stored: Any, ours: Any) -> bool:
    """Equal as NVIDIA's attribute and ours: a size [w, h] against our square size, numpy
    scalars as numbers, floats to a relative 1e-9."""
    if hasattr(stored, "tolist"):
        stored = stored.tolist()
    if isinstance(stored, list | tuple) and not isinstance(ours, list | tuple):
        return all(_same(s, ours) for s in stored)
    if isinstance(stored, list | tuple):
        return len(stored) == len(ours) and all(map(_same, stored, ours))
    if stored is None or ours is None or isinstance(stored, str | bool):
        return stored == ours
    if isinstance(stored, int | float):
        return math.isclose(float(stored), float(ours), rel_tol=1e-9, abs_tol=1e-12)
    return bool(stored == ours)


def _show(value: Any) -> str:
    return repr(value.tolist() if hasattr(value, "tolist") else value)


def load_weights(generator: StyleGAN3Generator, state: dict[str, Tensor], where: str) -> None:
    ours = generator.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: the StyleGAN3 weights do not match its init_kwargs"
            + (f"; missing {_few(missing)}" if missing else "")
            + (f"; unexpected {_few(unexpected)}" if unexpected else "")
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(ours[key].shape):
            raise CheckpointError(
                f"{where}: {key} has shape {list(value.shape)}, its init_kwargs give "
                f"{list(ours[key].shape)}"
            )
        if not value.is_floating_point():
            raise CheckpointError(f"{where}: {key} is {value.dtype}, not a float tensor")
    generator.load_state_dict({k: v.detach().float() for k, v in state.items()}, strict=True)


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")

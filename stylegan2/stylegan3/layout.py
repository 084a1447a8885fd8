"""What a StyleGAN3 generator's constructor arguments decide: every layer's geometry.

NVIDIA's `SynthesisNetwork` derives all layer sizes, channel counts, sampling rates, cutoffs
and paddings from a handful of `init_kwargs` (Karras et al., 2021, "Alias-Free Generative
Adversarial Networks", sec. 3.2 and appendix F). A pickle stores those arguments, the
parameters and the buffers; everything else is recomputed here, exactly as NVIDIA's code
does it (float64 NumPy arithmetic, the same rounding), so that a generator built from the
arguments alone has the same state-dict names and shapes as the file.

The layout is plain data (no torch): `GeneratorConfig` holds the arguments, `LayerSpec` one
synthesis layer's derived geometry, `synthesis_layout` computes the list.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

_MAPPING_KEYS = {"num_layers", "lr_multiplier", "w_avg_beta"}


@dataclass(frozen=True)
class GeneratorConfig:
    """The constructor arguments of NVIDIA's StyleGAN3 `Generator` (its `init_kwargs`).

    Defaults are NVIDIA's; configs T and R differ only in `conv_kernel` (3 / 1),
    `use_radial_filters` (False / True) and the channel widths.
    """

    z_dim: int  # width of z
    w_dim: int  # width of w
    img_resolution: int  # output resolution in pixels (square)
    c_dim: int = 0  # width of the class label; 0 = unconditional
    img_channels: int = 3  # output colour channels
    mapping_layers: int = 2  # fully connected layers of the mapping network
    mapping_lr_multiplier: float = 0.01  # the mapping's equalised-lr gain
    w_avg_beta: float = 0.998  # decay of w_avg in training (unused at inference)
    channel_base: int = 32768  # channels = min(channel_base / 2 / cutoff, channel_max)
    channel_max: int = 512  # the widest layer
    num_layers: int = 14  # synthesis layers, excluding the Fourier input and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2.0  # cutoff frequency of the first layer (f_c,0), cycles/image
    first_stopband: float = 2**2.1  # minimum stopband of the first layer (f_t,0)
    last_stopband_rel: float = 2**0.3  # minimum stopband of the last layer, relative to f_c
    margin_size: int = 10  # extra pixels computed outside the image on each side
    output_scale: float = 0.25  # the image is the ToRGB output times this
    num_fp16_res: int = 4  # NVIDIA runs the N highest resolutions in fp16 on CUDA
    conv_kernel: int = 3  # 3 (config T) or 1 (config R); ToRGB is always 1x1
    filter_size: int = 6  # low-pass taps per unit of the lower sampling rate
    lrelu_upsampling: int = 2  # the leaky ReLU runs at this multiple of the sampling rate
    use_radial_filters: bool = False  # jinc down-filters in the non-critical layers (config R)
    conv_clamp: float | None = 256  # clamp each layer's output to [-X, X]; None: no clamp
    magnitude_ema_beta: float = 0.999  # decay of magnitude_ema in training

    @classmethod
    def from_init_kwargs(cls, init_kwargs: dict[str, Any]) -> GeneratorConfig:
        """Parse NVIDIA's `G.init_kwargs` (nested `mapping_kwargs`, flat synthesis kwargs).

        Raises ValueError naming an argument we do not implement (anything that would change
        the computation must be understood, not ignored).
        """
        kwargs = dict(init_kwargs)
        mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
        unknown_mapping = sorted(set(mapping) - _MAPPING_KEYS)
        if unknown_mapping:
            raise ValueError(
                f"unsupported StyleGAN3 mapping_kwargs: {', '.join(unknown_mapping)} "
                f"(known: {', '.join(sorted(_MAPPING_KEYS))})"
            )
        names = {f.name for f in fields(cls)} - {
            "mapping_layers",
            "mapping_lr_multiplier",
            "w_avg_beta",
        }
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(
                f"unsupported StyleGAN3 init_kwargs: {', '.join(unknown)} "
                f"(this generator implements {', '.join(sorted(names))})"
            )
        missing = [k for k in ("z_dim", "w_dim", "img_resolution") if k not in kwargs]
        if missing:
            raise ValueError(f"StyleGAN3 init_kwargs lack {', '.join(missing)}")
        kwargs["mapping_layers"] = mapping.get("num_layers", 2)
        kwargs["mapping_lr_multiplier"] = mapping.get("lr_multiplier", 0.01)
        kwargs["w_avg_beta"] = mapping.get("w_avg_beta", 0.998)
        config = cls(**{key: _coerce(key, value) for key, value in kwargs.items()})
        config.check()
        return config

    def check(self) -> None:
        """Raise ValueError on arguments no generator can be built from, or beyond any
        published one by far (a file's arguments decide how much memory building takes)."""
        limits = {
            "z_dim": (1, 4096), "w_dim": (1, 4096), "img_resolution": (4, 4096),
            "c_dim": (0, 100_000), "img_channels": (1, 16), "mapping_layers": (0, 64),
            "channel_max": (1, 8192), "channel_base": (1, 2**24), "num_layers": (1, 64),
            "conv_kernel": (1, 15), "filter_size": (1, 64), "lrelu_upsampling": (1, 16),
            "margin_size": (0, 1024),
        }  # fmt: skip
        for key, (lo, hi) in limits.items():
            value = getattr(self, key)
            if not lo <= value <= hi:
                raise ValueError(f"init_kwargs {key} must be in {lo}..{hi} (got {value})")
        if self.num_critical >= self.num_layers:
            raise ValueError(
                f"init_kwargs num_critical must be below num_layers "
                f"(got {self.num_critical}, {self.num_layers})"
            )
        if self.first_cutoff <= 0 or self.first_stopband <= 0 or self.last_stopband_rel <= 0:
            raise ValueError(
                "init_kwargs first_cutoff, first_stopband, last_stopband_rel must be > 0"
            )

    def to_init_kwargs(self) -> dict[str, Any]:
        """NVIDIA's `init_kwargs` form (plain, JSON-able), every argument spelled out."""
        plain = asdict(self)
        mapping = {
            "num_layers": plain.pop("mapping_layers"),
            "lr_multiplier": plain.pop("mapping_lr_multiplier"),
            "w_avg_beta": plain.pop("w_avg_beta"),
        }
        return {**plain, "mapping_kwargs": mapping}

    @property
    def num_ws(self) -> int:
        """W+ entries: one for the input, one per layer, one for ToRGB."""
        return self.num_layers + 2


_INT_FIELDS = {
    "z_dim", "w_dim", "img_resolution", "c_dim", "img_channels", "mapping_layers",
    "channel_base", "channel_max", "num_layers", "num_critical", "margin_size", "num_fp16_res",
    "conv_kernel", "filter_size", "lrelu_upsampling",
}  # fmt: skip


def _coerce(key: str, value: Any) -> Any:
    """An init argument as the type the layout computes with; ValueError names the key."""
    if key == "use_radial_filters":
        if not isinstance(value, bool):
            raise ValueError(f"init_kwargs {key} must be true or false (got {value!r})")
        return value
    if key == "conv_clamp" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"init_kwargs {key} must be a number (got {value!r})")
    if key in _INT_FIELDS:
        if value != int(value) or value < 0:
            raise ValueError(f"init_kwargs {key} must be a whole number >= 0 (got {value!r})")
        return int(value)
    if not math.isfinite(value):
        raise ValueError(f"init_kwargs {key} must be finite (got {value!r})")
    return float(value)


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer (`L{index}_{size}_{channels}`): everything its module needs."""

    index: int
    name: str  # NVIDIA's attribute name, the prefix of its state-dict keys
    is_torgb: bool  # the last layer: 1x1 conv, no demodulation, linear activation
    is_critically_sampled: bool  # cutoff at Nyquist: no radial filter
    use_fp16: bool  # NVIDIA's choice on CUDA; we compute in fp32
    in_channels: int
    out_channels: int
    in_size: int  # input height = width, pixels
    out_size: int
    in_sampling_rate: int  # samples per image unit
    out_sampling_rate: int
    tmp_sampling_rate: int  # where the leaky ReLU runs
    in_cutoff: float  # f_c of the input / output, cycles per image unit
    out_cutoff: float
    in_half_width: float  # transition band half-width f_h
    out_half_width: float
    conv_kernel: int
    up_factor: int
    up_taps: int  # 1: no up-filter (an identity)
    down_factor: int
    down_taps: int
    down_radial: bool  # the down-filter is a 2-D jinc (else a separable Kaiser)
    padding: tuple[int, int, int, int]  # (x0, x1, y0, y1) of the up-sampled image


@dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input layer."""

    channels: int
    size: int  # pixels, margin included
    sampling_rate: float
    bandwidth: float  # cutoff of the features: |freq| <= bandwidth


def synthesis_layout(config: GeneratorConfig) -> tuple[InputSpec, tuple[LayerSpec, ...]]:
    """The input and the `num_layers + 1` synthesis layers, as NVIDIA's SynthesisNetwork
    and SynthesisLayer constructors compute them."""
    c = config
    n = c.num_layers
    # Geometric progression of cutoffs and minimum stopbands, flat for the critical layers.
    last_cutoff = c.img_resolution / 2
    last_stopband = last_cutoff * c.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - c.num_critical), 1)
    cutoffs = c.first_cutoff * (last_cutoff / c.first_cutoff) ** exponents
    stopbands = c.first_stopband * (last_stopband / c.first_stopband) ** exponents
    # Smallest power-of-two sampling rate that holds the stopband, at most the image's.
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, c.img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + c.margin_size * 2
    sizes[-2:] = c.img_resolution
    channels = np.rint(np.minimum((c.channel_base / 2) / cutoffs, c.channel_max))
    channels[-1] = c.img_channels

    input_spec = InputSpec(
        channels=int(channels[0]),
        size=int(sizes[0]),
        sampling_rate=float(sampling_rates[0]),
        bandwidth=float(cutoffs[0]),
    )
    layers = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == n
        is_critical = idx >= n - c.num_critical
        in_rate, out_rate = int(sampling_rates[prev]), int(sampling_rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else c.lrelu_upsampling)
        kernel = 1 if is_torgb else c.conv_kernel
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError(f"layer {idx}: sampling rates {in_rate}, {out_rate} do not divide")
        up_taps = c.filter_size * up if up > 1 and not is_torgb else 1
        down_taps = c.filter_size * down if down > 1 and not is_torgb else 1
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        # Output size before down-sampling, minus the up-sampled conv output, plus what the
        # two filters take away; the split follows the symmetric interpretation (app. C.3).
        pad_total = (out_size - 1) * down + 1
        pad_total -= (in_size + kernel - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        out_channels = int(channels[idx])
        layers.append(
            LayerSpec(
                index=idx,
                name=f"L{idx}_{out_size}_{out_channels}",
                is_torgb=is_torgb,
                is_critically_sampled=is_critical,
                use_fp16=bool(sampling_rates[idx] * (2**c.num_fp16_res) > c.img_resolution),
                in_channels=int(channels[prev]),
                out_channels=out_channels,
                in_size=in_size,
                out_size=out_size,
                in_sampling_rate=in_rate,
                out_sampling_rate=out_rate,
                tmp_sampling_rate=tmp_rate,
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[idx]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[idx]),
                conv_kernel=kernel,
                up_factor=up,
                up_taps=up_taps,
                down_factor=down,
                down_taps=down_taps,
                down_radial=c.use_radial_filters and not is_critical,
                padding=(pad_lo, pad_hi, pad_lo, pad_hi),
            )
        )
    return input_spec, tuple(layers)

"""NVIDIA's StyleGAN2 generators as our Generator: stylegan2-ada-pytorch (and stylegan3's
networks_stylegan2) pickles, and the TensorFlow stylegan2 / stylegan2-ada pickles.

NVIDIA's generator (architecture 'skip') and rosinality's layout compute the same function,
so a conversion is a renaming with reshapes, checked key by key:

* mapping: NVIDIA normalizes z by its second moment (our PixelNorm), then `num_layers`
  FullyConnectedLayers with lr_multiplier 0.01 and lrelu * sqrt(2) (our EqualLinear, which
  stores weights the same way: N(0,1)/lr_mul, scaled by lr_mul/sqrt(fan_in) at run time).
  `mapping.w_avg` is the truncation centre (our latent_avg); w is broadcast to all num_ws.
* synthesis: each SynthesisLayer is our StyledConv (modulated 3x3 conv, demodulated; the 2x
  layers a transposed conv then the [1,3,3,1] FIR with gain 4; noise_const * noise_strength;
  bias + lrelu * sqrt(2), clamped to +-conv_clamp), each ToRGBLayer our ToRGB (1x1
  modulated conv, not demodulated, bias, clamped to +-conv_clamp), summed over the 2x
  upsampled skip image. The W+ entries are used in the same order (conv, conv, torgb shares
  the next conv's entry), so num_ws == our n_latent.
* channels: NVIDIA's min(channel_base // res, channel_max) per resolution, given to our
  Generator as its table (rosinality's table when it is one of those).

The TensorFlow variables are first renamed into NVIDIA's PyTorch names exactly as NVIDIA's
`legacy.convert_tf_generator` does (Dense weights transposed, conv weights HWIO -> OIHW,
`Conv0_up` weights flipped, `mod_bias + 1`, `noise{n}` buffers, `dlatent_avg`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from stylegan2.architecture import GeneratorConfig
from stylegan2.errors import CheckpointError
from stylegan2.model import DEFAULT_BLUR, Generator, channels_for
from stylegan2.nvidia_pickle import NetworkRecord
from stylegan2.ops import make_kernel

_OUR_LR_MUL = 0.01  # our mapping layers' lr multiplier (Generator's lr_mlp default)

# init_kwargs that change nothing in what the generator computes in fp32 (precision and
# memory-layout switches, training-only statistics).
_INERT = frozenset(
    {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default",
     "w_avg_beta", "embed_features"}
)  # fmt: skip


@dataclass(frozen=True)
class StyleGAN2Weights:
    """What a conversion gives: our generator with the file's weights, and its w_avg."""

    config: GeneratorConfig  # the architecture (config.build() makes another, untrained)
    generator: Generator  # eval mode, on the CPU, every weight and noise buffer the file's
    latent_avg: Tensor  # [style_dim]: NVIDIA's mapping.w_avg, the truncation centre


# -- architecture -------------------------------------------------------------------------


def config_from_init_kwargs(init_kwargs: dict[str, Any], where: str = "generator") -> tuple[
    GeneratorConfig, float
]:  # fmt: skip
    """Our GeneratorConfig for NVIDIA's Generator(**init_kwargs), and the file's mapping
    lr_multiplier; refuses (naming the argument) what our generator cannot compute.

    stylegan2-ada-pytorch's Generator takes `synthesis_kwargs=dict(...)`; stylegan3's
    networks_stylegan2 (the StyleGAN2 files published with StyleGAN3) takes the same
    arguments as keywords of its own (`**synthesis_kwargs`): both are read."""
    kw = dict(init_kwargs)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    res = _int(kw.pop("img_resolution", None), "img_resolution", where)
    z_dim = _int(kw.pop("z_dim", 512), "z_dim", where)
    w_dim = _int(kw.pop("w_dim", 512), "w_dim", where)
    _expect(kw.pop("c_dim", 0), 0, "c_dim", where, "conditional generators are not supported")
    _expect(kw.pop("img_channels", 3), 3, "img_channels", where, "only RGB generators are")
    flat = set(kw)  # stylegan3's networks_stylegan2: synthesis arguments at the top level
    if flat & set(synthesis):
        raise CheckpointError(f"{where}: {sorted(flat & set(synthesis))[0]} given twice")
    synthesis.update(kw)
    n_mlp = _int(mapping.pop("num_layers", 8), "mapping_kwargs.num_layers", where)
    lr_mul = float(mapping.pop("lr_multiplier", 0.01))
    _expect(mapping.pop("activation", "lrelu"), "lrelu", "mapping_kwargs.activation", where)
    if mapping.pop("layer_features", None) not in (None, w_dim):
        raise CheckpointError(f"{where}: mapping_kwargs.layer_features other than w_dim")
    base = _int(synthesis.pop("channel_base", 32768), "synthesis_kwargs.channel_base", where)
    cmax = _int(synthesis.pop("channel_max", 512), "synthesis_kwargs.channel_max", where)
    clamp = synthesis.pop("conv_clamp", None)
    _expect(
        synthesis.pop("architecture", "skip"), "skip", "synthesis_kwargs.architecture", where,
        "only the 'skip' generator (StyleGAN2 config-f, StyleGAN2-ADA) is supported",
    )  # fmt: skip
    _expect(synthesis.pop("use_noise", True), True, "synthesis_kwargs.use_noise", where)
    _expect(synthesis.pop("activation", "lrelu"), "lrelu", "synthesis_kwargs.activation", where)
    _expect(synthesis.pop("kernel_size", 3), 3, "synthesis_kwargs.kernel_size", where)
    blur = synthesis.pop("resample_filter", None)
    if blur is not None and [float(t) for t in blur] != [float(t) for t in DEFAULT_BLUR]:
        raise CheckpointError(
            f"{where}: synthesis_kwargs.resample_filter {list(blur)} (only "
            f"{list(DEFAULT_BLUR)} is supported)"
        )
    for extra, group in ((mapping, "mapping_kwargs."), (synthesis, "synthesis_kwargs.")):
        unknown = sorted(k for k in extra if k not in _INERT)
        if unknown:
            name = unknown[0] if unknown[0] in flat else group + unknown[0]
            raise CheckpointError(f"{where}: unknown generator argument {name}")
    if not 8 <= res <= 1024 or res & (res - 1):
        raise CheckpointError(f"{where}: img_resolution {res} (8..1024, a power of two)")
    channels = [min(base // r, cmax) for r in _resolutions(res)]
    multiplier, table = _as_rosinality(channels, res)
    config = GeneratorConfig(
        size=res,
        style_dim=w_dim,
        n_mlp=n_mlp,
        channel_multiplier=multiplier,
        channels=table,
        conv_clamp=None if clamp is None else float(clamp),
        z_dim=None if z_dim == w_dim else z_dim,
    )
    return config, lr_mul


def _resolutions(size: int) -> list[int]:
    return [2**i for i in range(2, int(math.log2(size)) + 1)]


def _as_rosinality(channels: list[int], size: int) -> tuple[int, tuple[int, ...] | None]:
    """(channel_multiplier, None) when `channels` is rosinality's table for some multiplier
    (so the converted file has exactly rosinality's layout), else (2, the table)."""
    res = _resolutions(size)
    for multiplier in (2, 1, 4):
        if [channels_for(multiplier)[r] for r in res] == channels:
            return multiplier, None
    return 2, tuple(channels)


def _int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise CheckpointError(f"{where}: {name} is {value!r}, not an integer")
    return int(value)


def _expect(value: Any, want: Any, name: str, where: str, why: str = "") -> None:
    if value != want:
        raise CheckpointError(
            f"{where}: {name} is {value!r}; only {want!r} is supported"
            + (f" ({why})" if why else "")
        )


# -- weights ------------------------------------------------------------------------------


def nvidia_key_map(config: GeneratorConfig) -> dict[str, str]:
    """NVIDIA's G state-dict key -> ours, for every weight and noise buffer (not the
    resample filters, which our generator makes itself, nor mapping.w_avg: latent_avg)."""
    keys = {}
    for i in range(config.n_mlp):
        keys[f"mapping.fc{i}.weight"] = f"style.{i + 1}.weight"
        keys[f"mapping.fc{i}.bias"] = f"style.{i + 1}.bias"
    keys["synthesis.b4.const"] = "input.input"

    def layer(nv: str, ours: str, noise: int) -> None:
        keys[f"{nv}.weight"] = f"{ours}.conv.weight"
        keys[f"{nv}.affine.weight"] = f"{ours}.conv.modulation.weight"
        keys[f"{nv}.affine.bias"] = f"{ours}.conv.modulation.bias"
        keys[f"{nv}.noise_strength"] = f"{ours}.noise.weight"
        keys[f"{nv}.bias"] = f"{ours}.activate.bias"
        keys[f"{nv}.noise_const"] = f"noises.noise_{noise}"

    def torgb(nv: str, ours: str) -> None:
        keys[f"{nv}.weight"] = f"{ours}.conv.weight"
        keys[f"{nv}.affine.weight"] = f"{ours}.conv.modulation.weight"
        keys[f"{nv}.affine.bias"] = f"{ours}.conv.modulation.bias"
        keys[f"{nv}.bias"] = f"{ours}.bias"

    layer("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for i, res in enumerate(_resolutions(config.size)[1:]):
        layer(f"synthesis.b{res}.conv0", f"convs.{2 * i}", 2 * i + 1)
        layer(f"synthesis.b{res}.conv1", f"convs.{2 * i + 1}", 2 * i + 2)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{i}")
    return keys


def squeezed(shape: torch.Size | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its size-1 dimensions: NVIDIA's and our layouts of one weight differ
    only by those ([out, in, k, k] vs [1, out, in, k, k]; [] vs [1]; [3] vs [1, 3, 1, 1])."""
    return tuple(d for d in shape if d != 1)


def convert_pytorch(record: NetworkRecord, where: str = "generator") -> StyleGAN2Weights:
    """A stylegan2-ada-pytorch Generator record (G_ema) as our weights."""
    if record.class_name != "Generator" or "synthesis.b4.const" not in record.state_dict:
        raise CheckpointError(
            f"{where}: {record.module}.{record.class_name} is not a StyleGAN2 Generator"
        )
    config, lr_mul = config_from_init_kwargs(record.init_kwargs, where)
    return _convert(record.state_dict, config, lr_mul, where)


def _convert(
    nvidia: dict[str, Tensor], config: GeneratorConfig, lr_mul: float, where: str
) -> StyleGAN2Weights:
    generator = config.build()
    reference = generator.state_dict()  # our shapes, and our own FIR kernels
    kernel = make_kernel(DEFAULT_BLUR)
    keys = nvidia_key_map(config)
    state: dict[str, Tensor] = {}
    for key, value in nvidia.items():
        if key.endswith("resample_filter"):
            if value.shape != kernel.shape or not torch.allclose(value.float(), kernel):
                raise CheckpointError(f"{where}: {key} is not the [1,3,3,1] filter")
            continue
        if key == "mapping.w_avg":
            continue
        ours = keys.get(key)
        if ours is None:
            raise CheckpointError(f"{where}: unexpected weight {key!r} for {_what(config)}")
        want = reference[ours]
        if squeezed(value.shape) != squeezed(want.shape):
            raise CheckpointError(
                f"{where}: wrong shape for {key!r}: {list(value.shape)}, {_what(config)} "
                f"needs {list(want.shape)} ({ours})"
            )
        value = value.detach().float().reshape(want.shape).clone()
        if key.startswith("mapping.fc"):  # stored as N(0,1)/lr_mul: re-express for ours
            value = value * (lr_mul / _OUR_LR_MUL)
        state[ours] = value
    missing = [k for k in keys if keys[k] not in state]
    if missing or "mapping.w_avg" not in nvidia:
        shown = ", ".join((missing or ["mapping.w_avg"])[:5])
        raise CheckpointError(f"{where}: missing weights for {_what(config)}: {shown}")
    for key, value in reference.items():  # our FIR kernels (the filters were checked above)
        state.setdefault(key, value)
    latent_avg = nvidia["mapping.w_avg"].detach().float().reshape(-1).clone()
    if latent_avg.shape != (config.style_dim,):
        raise CheckpointError(f"{where}: mapping.w_avg is {list(latent_avg.shape)}")
    generator.load_state_dict(state, strict=True)
    return StyleGAN2Weights(config, generator.eval(), latent_avg)


def _what(config: GeneratorConfig) -> str:
    return f"a {config.size} px StyleGAN2 generator"


# -- TensorFlow ---------------------------------------------------------------------------

_TF_KWARGS: dict[str, tuple[str, Any]] = {  # TF static kwarg -> (NVIDIA PyTorch kwarg, default)
    "latent_size": ("z_dim", 512),
    "label_size": ("c_dim", 0),
    "dlatent_size": ("w_dim", 512),
    "resolution": ("img_resolution", 1024),
    "num_channels": ("img_channels", 3),
    "mapping_layers": ("mapping_kwargs.num_layers", 8),
    "label_fmaps": ("mapping_kwargs.embed_features", None),
    "mapping_fmaps": ("mapping_kwargs.layer_features", None),
    "mapping_nonlinearity": ("mapping_kwargs.activation", "lrelu"),
    "mapping_lrmul": ("mapping_kwargs.lr_multiplier", 0.01),
    "w_avg_beta": ("mapping_kwargs.w_avg_beta", 0.995),
    "fmap_base": ("synthesis_kwargs.channel_base", 16384),  # x2, as legacy.py
    "fmap_max": ("synthesis_kwargs.channel_max", 512),
    "num_fp16_res": ("synthesis_kwargs.num_fp16_res", 0),
    "conv_clamp": ("synthesis_kwargs.conv_clamp", None),
    "architecture": ("synthesis_kwargs.architecture", "skip"),
    "resample_kernel": ("synthesis_kwargs.resample_filter", [1, 3, 3, 1]),
    "use_noise": ("synthesis_kwargs.use_noise", True),
    "nonlinearity": ("synthesis_kwargs.activation", "lrelu"),
}
# Read by NVIDIA's converter and ignored: they do not change the network's function.
_TF_IGNORED = frozenset(
    {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning",
     "fused_modconv", "is_template_graph", "components"}
)  # fmt: skip

_TF_LAYER = {"weight": "weight", "bias": "bias", "noise_strength": "noise_strength",
             "mod_weight": "affine.weight", "mod_bias": "affine.bias"}  # fmt: skip


def _tf_init_kwargs(static: dict[str, Any], where: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"mapping_kwargs": {}, "synthesis_kwargs": {}}
    for name, value in static.items():
        if name in _TF_IGNORED:
            continue
        if name not in _TF_KWARGS:
            raise CheckpointError(f"{where}: unknown TensorFlow generator argument {name!r}")
        target, _ = _TF_KWARGS[name]
        if name == "fmap_base":
            value = _int(value, "fmap_base", where) * 2
        group, _, key = target.rpartition(".")
        (kwargs[group] if group else kwargs)[key] = value
    return kwargs


def _tf_rename(name: str, value: Tensor, where: str) -> tuple[str, Tensor] | None:
    """A TF variable under NVIDIA's PyTorch name and layout (legacy.convert_tf_generator);
    None for variables that hold no weight ('lod')."""
    if name == "lod" or name.endswith("/lod"):
        return None
    if name == "dlatent_avg":
        return "mapping.w_avg", value
    if m := re.fullmatch(r"mapping/Dense(\d+)/(weight|bias)", name):
        i, kind = m.groups()
        return f"mapping.fc{i}.{kind}", value.t() if kind == "weight" else value
    if name == "synthesis/4x4/Const/const":
        return "synthesis.b4.const", value[0]
    if m := re.fullmatch(r"synthesis/noise(\d+)", name):
        i = int(m.group(1))
        return f"synthesis.b{2 ** ((i + 5) // 2)}.conv{(i + 5) % 2}.noise_const", value[0, 0]
    if re.fullmatch(r"(synthesis/)?(ToRGB_lod\d+|\d+x\d+/Skip)/.*", name):
        raise CheckpointError(
            f"{where}: TF variable {name!r} belongs to the 'orig' or 'resnet' generator "
            "architecture (StyleGAN2 configs a-e); only 'skip' generators (config-f, "
            "StyleGAN2-ADA) are supported"
        )
    m = re.fullmatch(r"synthesis/(\d+)x\1/(Conv|Conv0_up|Conv1|ToRGB)/(\w+)", name)
    if m and m.group(3) in _TF_LAYER:
        res, layer, kind = m.groups()
        target = {"Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1", "ToRGB": "torgb"}
        if layer == "Conv" and res != "4":
            m = None
        else:
            if kind == "weight":
                if layer == "Conv0_up":  # TF's transposed conv runs the kernel flipped
                    value = value.flip([0, 1])
                value = value.permute(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
            elif kind == "mod_weight":
                value = value.t()
            elif kind == "mod_bias":
                value = value + 1  # TF adds the 1 at run time; NVIDIA's PyTorch stores it
            return f"synthesis.b{res}.{target[layer]}.{_TF_LAYER[kind]}", value
    raise CheckpointError(f"{where}: unexpected TensorFlow variable {name!r}")


def convert_tensorflow(record: NetworkRecord, where: str = "generator") -> StyleGAN2Weights:
    """A TensorFlow StyleGAN2 G_main record (Gs) as our weights."""
    if "synthesis/4x4/Const/const" not in record.state_dict:
        raise CheckpointError(f"{where}: the TensorFlow network is not a StyleGAN2 generator")
    version = record.attrs.get("", {}).get("version")
    if not isinstance(version, int) or version < 4:  # as NVIDIA's legacy.py
        raise CheckpointError(
            f"{where}: TensorFlow network version {version!r} (StyleGAN2 files are 4 or more)"
        )
    kwargs = _tf_init_kwargs(record.init_kwargs, where)
    config, lr_mul = config_from_init_kwargs(kwargs, where)
    renamed: dict[str, Tensor] = {}
    for name, value in record.state_dict.items():
        found = _tf_rename(name, value, where)
        if found is not None:
            renamed[found[0]] = found[1]
    return _convert(renamed, config, lr_mul, where)


CONVERTERS: dict[str, Callable[[NetworkRecord, str], StyleGAN2Weights]] = {
    "pytorch": convert_pytorch,
    "tensorflow": convert_tensorflow,
}

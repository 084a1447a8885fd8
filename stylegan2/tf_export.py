"""Export a StyleGAN2 generator as a TensorFlow-layout NVIDIA pickle, so that NVIDIA's own
tools take our results: `legacy.load_network_pkl` of stylegan2-ada-pytorch and stylegan3
(their `gen_images.py`, `projector.py`, `visualizer.py`) read a TensorFlow StyleGAN2 pickle
without TensorFlow, converting it as `legacy.convert_tf_generator` /
`convert_tf_discriminator` say.

Why the TensorFlow layout and not NVIDIA's PyTorch one: a PyTorch pickle of theirs is a
`torch_utils.persistence` record that carries the Python source of its module and is
rebuilt by *executing* that source; writing one means shipping code. A TensorFlow pickle is
data: three `dnnlib.tflib.network.Network` records (G, D, Gs) with their variables as numpy
arrays, which NVIDIA's loader reads into a stub without running anything (it never imports
TensorFlow either). The record's `build_module_src` (TensorFlow would execute it) is one
line that refuses to run and says how to load the file.

The file is the inverse of what stylegan2/nvidia_stylegan2.py reads: our weights under
NVIDIA's PyTorch names (`nvidia_key_map`), then under the TensorFlow names and layouts
(conv weights OIHW -> HWIO, `Conv0_up` flipped, dense and modulation weights transposed,
`mod_bias - 1`, scalars and noise buffers as TF stores them, `dlatent_avg`). G and Gs are
the same generator (we keep no non-averaged copy). D is a zero-weight `resnet`
discriminator of the right shapes (NVIDIA's loader needs one; nothing here trains a D).

Arrays name numpy's module as numpy 1.x writes it (`numpy.core.multiarray`), which numpy 1
and numpy 2 both read, like the published TensorFlow files.

    >>> from stylegan2 import load_generator
    >>> from stylegan2.tf_export import export_tf_pickle
    >>> loaded = load_generator("dog2cat.pt")  # a job's adapted checkpoint
    >>> export_tf_pickle(loaded, "dog2cat-nvidia.pkl")
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from nada import rundir
from stylegan2.architecture import GeneratorConfig
from stylegan2.errors import CheckpointError
from stylegan2.model import Generator, channels_for
from stylegan2.nvidia_stylegan2 import nvidia_key_map

__all__ = ["export_tf_pickle", "tf_pickle_bytes", "tf_variables"]

TF_PROTOCOL = 3  # what NVIDIA's TensorFlow code wrote (Python 3.6/3.7, TensorFlow 1.x)
TF_NETWORK_VERSION = 4  # legacy.py refuses records below 4
REFUSE_SOURCE = (
    "raise RuntimeError('This pickle was written by stylegan-nada for NVIDIA legacy."
    "load_network_pkl (stylegan2-ada-pytorch, stylegan3), which reads its weights as data; "
    "it holds no TensorFlow code to run.')\n"
)


class _Network:
    """Pickles as `dnnlib.tflib.network.Network` with the given state (see _TFPickler)."""

    def __init__(self, state: dict[str, Any]):
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        # (class, no args) + BUILD(state): GLOBAL, EMPTY_TUPLE, NEWOBJ, ..., BUILD, as
        # TensorFlow's Network.__getstate__ pickles
        return (_new_network, (), self.state)


def _new_network() -> None:  # pragma: no cover - a placeholder global, never called
    raise AssertionError("placeholder for dnnlib.tflib.network.Network")


# The pure-Python pickler (the C one's save_global cannot be replaced); typeshed does not
# describe its methods, hence Any.
_PurePickler: Any = pickle._Pickler


class _TFPickler(_PurePickler):
    """Writes the globals under the names NVIDIA's loaders look up."""

    def save_reduce(self, func: Any, args: Any, state: Any = None, *rest: Any, **kw: Any) -> None:
        if func is _new_network:  # a Network: GLOBAL, EMPTY_TUPLE, NEWOBJ, then BUILD(state)
            self._write_global("dnnlib.tflib.network", "Network")
            self.save(())
            self.write(pickle.NEWOBJ)
            obj = kw.get("obj")
            if obj is not None:
                self.memoize(obj)
            self.save(state)
            self.write(pickle.BUILD)
            return
        super().save_reduce(func, args, state, *rest, **kw)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("numpy._core"):  # numpy 2's name; numpy 1 knows numpy.core
            self._write_global("numpy.core" + module[len("numpy._core") :], name or obj.__name__)
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def _write_global(self, module: str, name: str) -> None:
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())


# -- our weights as TensorFlow variables ---------------------------------------------------


def _hwio(nv: Tensor) -> Tensor:
    """[out, in, kh, kw] -> TensorFlow's [kh, kw, in, out]."""
    return nv.permute(2, 3, 1, 0)


def _tf_name(nv_key: str, value: Tensor) -> tuple[str, Tensor]:
    """An NVIDIA PyTorch G key and tensor (NVIDIA's shape) -> the TF variable: the inverse
    of nvidia_stylegan2._tf_rename (legacy.convert_tf_generator)."""
    parts = nv_key.split(".")
    if parts[0] == "mapping":  # mapping.fc{i}.weight|bias
        i, kind = parts[1][2:], parts[2]
        return f"mapping/Dense{i}/{kind}", value.t() if kind == "weight" else value
    if nv_key == "synthesis.b4.const":
        return "synthesis/4x4/Const/const", value.unsqueeze(0)
    res, layer, kind = parts[1][1:], parts[2], ".".join(parts[3:])
    tf_layer = {"conv0": "Conv0_up", "conv1": "Conv" if res == "4" else "Conv1", "torgb": "ToRGB"}
    prefix = f"synthesis/{res}x{res}/{tf_layer[layer]}"
    if kind == "weight":
        value = _hwio(value)
        if layer == "conv0":  # TF's transposed conv runs the kernel flipped
            value = value.flip([0, 1])
        return f"{prefix}/weight", value
    if kind == "affine.weight":
        return f"{prefix}/mod_weight", value.t()
    if kind == "affine.bias":  # NVIDIA's PyTorch stores the +1 that TF adds at run time
        return f"{prefix}/mod_bias", value - 1
    if kind in ("bias", "noise_strength"):
        return f"{prefix}/{kind}", value
    raise AssertionError(f"no TensorFlow name for {nv_key}")  # nvidia_key_map's keys only


def _noise_index(nv_key: str) -> int:
    """synthesis.b{res}.conv{0,1}.noise_const -> n of TF's synthesis/noise{n}."""
    res, layer = int(nv_key.split(".")[1][1:]), nv_key.split(".")[2]
    log2 = res.bit_length() - 1
    return 0 if res == 4 else 2 * log2 - (5 if layer == "conv0" else 4)


def _nvidia_shape(nv_key: str, ours: Tensor) -> Tensor:
    """Our tensor in NVIDIA's PyTorch layout (ours have extra size-1 dimensions)."""
    if nv_key.endswith(".noise_strength"):
        return ours.reshape(())
    if nv_key.endswith(".noise_const"):
        return ours.reshape(ours.shape[-2:])
    if nv_key == "synthesis.b4.const":
        return ours.reshape(ours.shape[1:])
    if nv_key.endswith("torgb.bias"):
        return ours.reshape(-1)
    if nv_key.endswith(".weight") and ours.ndim == 5:  # modulated conv: [1, out, in, k, k]
        return ours.reshape(ours.shape[1:])
    return ours


def _fmap(config: GeneratorConfig) -> tuple[int, int]:
    """TF's (fmap_base, fmap_max) that give our channel table (NVIDIA's PyTorch
    channel_base is 2 x fmap_base); refuses a table NVIDIA's formula cannot express."""
    resolutions = [2**i for i in range(2, config.size.bit_length())]
    channels = _channels(config)
    fmax = channels[0]
    base = fmax * config.size  # every resolution at the maximum
    for res, c in zip(resolutions, channels, strict=True):
        if c < fmax:
            base = c * res
            break
    want = [min(base // r, fmax) for r in resolutions]
    if want != channels:
        raise CheckpointError(
            f"the generator's channels {channels} (at {resolutions[0]}..{config.size} px) are "
            "not min(channel_base // res, channel_max) for any channel_base: NVIDIA's "
            "networks cannot hold them"
        )
    if base % 2:
        raise CheckpointError(f"channel_base {base} is odd: TensorFlow's fmap_base is half of it")
    return base // 2, fmax


def _channels(config: GeneratorConfig) -> list[int]:
    if config.channels is not None:
        return list(config.channels)
    table = channels_for(config.channel_multiplier)
    return [table[2**i] for i in range(2, config.size.bit_length())]


def tf_variables(
    generator: Generator, latent_avg: Tensor
) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]], list[
    tuple[str, np.ndarray]
]]:  # fmt: skip
    """The TF G_main static_kwargs and the variables of its root (dlatent_avg), mapping and
    synthesis components, in TensorFlow's order, as float32 numpy arrays."""
    config = GeneratorConfig.of(generator)
    fmap_base, fmap_max = _fmap(config)
    static: dict[str, Any] = {
        "latent_size": config.z_dim or config.style_dim,
        "dlatent_size": config.style_dim,
        "resolution": config.size,
        "num_channels": 3,
        "label_size": 0,
        "mapping_layers": config.n_mlp,
        "fmap_base": fmap_base,
        "fmap_max": fmap_max,
        "architecture": "skip",
    }
    if config.conv_clamp is not None:
        static["conv_clamp"] = float(config.conv_clamp)
    ours = {k: v.detach().float().cpu() for k, v in generator.state_dict().items()}
    mapping: list[tuple[str, np.ndarray]] = []
    synthesis: list[tuple[str, np.ndarray]] = []
    noises: dict[int, np.ndarray] = {}
    for nv_key, our_key in nvidia_key_map(config).items():
        value = _nvidia_shape(nv_key, ours[our_key])
        if nv_key.endswith(".noise_const"):
            noises[_noise_index(nv_key)] = _array(value.reshape(1, 1, *value.shape))
            continue
        name, tf_value = _tf_name(nv_key, value)
        component, _, local = name.partition("/")
        (mapping if component == "mapping" else synthesis).append((local, _array(tf_value)))
    synthesis += [(f"noise{n}", noises[n]) for n in sorted(noises)]
    avg = latent_avg.detach().float().cpu().reshape(-1)
    if avg.shape != (config.style_dim,):
        raise CheckpointError(f"latent_avg is {list(avg.shape)}, not [{config.style_dim}]")
    return static, [("dlatent_avg", _array(avg))], mapping, synthesis


def _array(value: Tensor) -> np.ndarray:
    return np.array(value.numpy(), dtype=np.float32, order="C")  # keeps 0-d arrays 0-d


def _discriminator(static: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """Zero weights of NVIDIA's `resnet` D for this resolution and channel table, under the
    names legacy.convert_tf_discriminator reads."""
    size, base, fmax = static["resolution"], 2 * static["fmap_base"], static["fmap_max"]

    def ch(res: int) -> int:
        return min(base // res, fmax)

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, np.float32)

    out: list[tuple[str, np.ndarray]] = []
    res = size
    out += [(f"{res}x{res}/FromRGB/weight", zeros(1, 1, 3, ch(res))),
            (f"{res}x{res}/FromRGB/bias", zeros(ch(res)))]  # fmt: skip
    while res > 4:
        tmp, nxt = ch(res), ch(res // 2)
        out += [
            (f"{res}x{res}/Conv0/weight", zeros(3, 3, tmp, tmp)),
            (f"{res}x{res}/Conv0/bias", zeros(tmp)),
            (f"{res}x{res}/Conv1_down/weight", zeros(3, 3, tmp, nxt)),
            (f"{res}x{res}/Conv1_down/bias", zeros(nxt)),
            (f"{res}x{res}/Skip/weight", zeros(1, 1, tmp, nxt)),
        ]
        res //= 2
    c = ch(4)
    out += [
        ("4x4/Conv/weight", zeros(3, 3, c + 1, c)),  # + the minibatch-stddev channel
        ("4x4/Conv/bias", zeros(c)),
        ("4x4/Dense0/weight", zeros(c * 16, c)),
        ("4x4/Dense0/bias", zeros(c)),
        ("Output/weight", zeros(c, 1)),
        ("Output/bias", zeros(1)),
    ]
    return out


def _record(
    name: str,
    build: str,
    static: dict[str, Any],
    variables: list[tuple[str, np.ndarray]],
    components: dict[str, _Network] | None = None,
) -> _Network:
    return _Network(
        {
            "version": TF_NETWORK_VERSION,
            "name": name,
            "static_kwargs": dict(static),
            "components": dict(components or {}),
            "build_module_src": REFUSE_SOURCE,
            "build_func_name": build,
            "variables": variables,
        }
    )


def tf_pickle_bytes(generator: Generator, latent_avg: Tensor) -> bytes:
    """The (G, D, Gs) TensorFlow pickle of `generator` as bytes."""
    static, root, mapping, synthesis = tf_variables(generator, latent_avg)

    def g_main(name: str) -> _Network:
        return _record(
            name,
            "G_main",
            static,
            root,
            {
                "mapping": _record("G_mapping", "G_mapping", {}, mapping),
                "synthesis": _record("G_synthesis", "G_synthesis_stylegan2", {}, synthesis),
            },
        )

    d_static = {
        "num_channels": 3,
        "resolution": static["resolution"],
        "label_size": 0,
        "fmap_base": static["fmap_base"],
        "fmap_max": static["fmap_max"],
        "architecture": "resnet",
    }
    discriminator = _record("D", "D_stylegan2", d_static, _discriminator(static))
    buffer = io.BytesIO()
    _TFPickler(buffer, protocol=TF_PROTOCOL).dump((g_main("G"), discriminator, g_main("Gs")))
    return buffer.getvalue()


def export_tf_pickle(loaded: Any, path: str | os.PathLike[str]) -> Path:
    """Write `loaded` (a LoadedGenerator of family 'stylegan2') as a TensorFlow StyleGAN2
    pickle at `path`, atomically.

    Raises:
        CheckpointError: a StyleGAN3 generator (NVIDIA's TensorFlow code has none), or a
            channel table NVIDIA's networks cannot express.
    """
    family = getattr(loaded, "family", "stylegan2")
    if family != "stylegan2":
        raise CheckpointError(
            f"only StyleGAN2 generators can be exported as a TensorFlow pickle (this one is "
            f"{family}; NVIDIA's TensorFlow code has no StyleGAN3)"
        )
    data = tf_pickle_bytes(loaded.generator, loaded.latent_avg)
    target = Path(path)
    with rundir.atomic_output(target) as tmp:
        tmp.write_bytes(data)
    return target

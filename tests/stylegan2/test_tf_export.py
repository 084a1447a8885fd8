"""Export as a TensorFlow StyleGAN2 pickle (stylegan2/tf_export.py): the file NVIDIA's
`legacy.load_network_pkl` converts.

NVIDIA's code cannot run here, so the checks lean on what it wrote: exporting the generator
of NVIDIA's own StyleGAN2-ADA fixture gives exactly the variables of the TensorFlow fixture
(which NVIDIA's converter turns back into that G_ema), the file reads back to NVIDIA's
outputs, it names only the globals a legacy loader resolves, and its discriminator has
every variable `convert_tf_discriminator` reads, in the shapes NVIDIA's D has."""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan2 import load_generator
from stylegan2.errors import CheckpointError
from stylegan2.nvidia_pickle import read_nvidia_pickle
from stylegan2.nvidia_stylegan2 import _tf_rename, config_from_init_kwargs, squeezed
from stylegan2.tf_export import export_tf_pickle

DATA = Path(__file__).resolve().parents[1] / "data" / "nvidia"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ada = load_generator(DATA / "ada_sg2_64.pkl")
    return export_tf_pickle(ada, tmp_path_factory.mktemp("tf") / "ada-tf.pkl")


def test_the_export_of_nvidias_generator_is_nvidias_tensorflow_file(exported: Path) -> None:
    ours = read_nvidia_pickle(exported)
    theirs = read_nvidia_pickle(DATA / "ada_sg2_64_tf.pkl")
    assert ours.framework == "tensorflow"
    for name in ("G", "Gs"):
        mine, fixture = ours.networks[name].state_dict, theirs.networks["Gs"].state_dict
        assert sorted(mine) == sorted(fixture)  # legacy.py reads them by name
        for key, value in fixture.items():
            assert mine[key].shape == value.shape, key
            torch.testing.assert_close(mine[key], value, rtol=0, atol=1e-6, msg=key)
    static = ours.networks["Gs"].init_kwargs
    assert {k: static[k] for k in theirs.networks["Gs"].init_kwargs if k in static} == {
        k: v for k, v in theirs.networks["Gs"].init_kwargs.items() if k in static
    }
    assert static["conv_clamp"] == 256.0  # the ADA generator's clamp travels with it


def test_the_exported_file_renders_nvidias_outputs(exported: Path) -> None:
    outputs = torch.load(DATA / "ada_sg2_64_outputs.pt", weights_only=True)
    loaded = load_generator(exported)
    with torch.no_grad():
        image = loaded.render_wplus(loaded.to_wplus(outputs["z"]))
        trunc = loaded.render_wplus(loaded.to_wplus(outputs["z"], truncation=0.7))
    assert (image - outputs["img_z"]).abs().max() < 1e-4
    assert (trunc - outputs["img_z_trunc07"]).abs().max() < 1e-4


class _Stub(dict):
    """What NVIDIA's legacy.py puts in place of dnnlib.tflib.network.Network (an EasyDict:
    the pickled state lands in the instance's __dict__)."""


class _LegacyLike(pickle.Unpickler):
    """NVIDIA's _LegacyUnpickler: the Network class replaced by a stub, everything else the
    standard lookup (numpy's own functions)."""

    seen: set[str]

    def find_class(self, module: str, name: str) -> object:
        self.seen.add(f"{module}.{name}")
        if (module, name) == ("dnnlib.tflib.network", "Network"):
            return _Stub
        assert module in ("numpy", "numpy.core.multiarray"), f"{module}.{name}"
        return super().find_class(module, name)


def _collect(net: _Stub, prefix: str = "") -> dict[str, np.ndarray]:
    """legacy._collect_tf_params."""
    params = {prefix + name: value for name, value in net.__dict__["variables"]}
    for name, comp in net.__dict__["components"].items():
        params.update(_collect(comp, prefix + name + "/"))
    return params


def test_a_legacy_style_loader_reads_it_and_finds_every_variable(exported: Path) -> None:
    unpickler = _LegacyLike(io.BytesIO(exported.read_bytes()))
    unpickler.seen = set()
    with warnings.catch_warnings():  # numpy 2 may warn about the numpy.core alias
        warnings.simplefilter("ignore", DeprecationWarning)
        g, d, gs = unpickler.load()
    assert unpickler.seen == {
        "dnnlib.tflib.network.Network",
        "numpy.core.multiarray._reconstruct",
        "numpy.ndarray",
        "numpy.dtype",
    }
    assert all(isinstance(net, _Stub) for net in (g, d, gs))
    assert gs.__dict__["version"] >= 4 and d.__dict__["version"] >= 4
    assert "raise" in gs.__dict__["build_module_src"]  # TensorFlow would refuse to run it
    params = _collect(gs)
    assert all(v.dtype == np.float32 for v in params.values())
    # every NVIDIA G parameter of this configuration comes from a variable (legacy's rules,
    # as stylegan2/nvidia_stylegan2.py restates them)
    names = {(_tf_rename(n, torch.from_numpy(v), "x") or ("lod",))[0] for n, v in params.items()}
    assert {"mapping.w_avg", "synthesis.b4.const", "synthesis.b64.conv0.weight"} <= names


def _nvidia_d_shapes(res: int, channel_base: int, channel_max: int) -> dict[str, tuple[int, ...]]:
    """NVIDIA's resnet Discriminator (networks.py) parameters for c_dim 0, as legacy reads
    them from TF: block r has fromrgb (top only), conv0 tmp->tmp, conv1 tmp->out (down),
    skip tmp->out; the epilogue conv (C + 1 mbstd channel) -> C, fc C*16 -> C, out C -> 1."""

    def ch(r: int) -> int:
        return min(channel_base // r, channel_max)

    shapes: dict[str, tuple[int, ...]] = {
        f"{res}x{res}/FromRGB/weight": (ch(res), 3, 1, 1),
        f"{res}x{res}/FromRGB/bias": (ch(res),),
    }
    r = res
    while r > 4:
        tmp, out = ch(r), ch(r // 2)
        shapes |= {
            f"{r}x{r}/Conv0/weight": (tmp, tmp, 3, 3),
            f"{r}x{r}/Conv0/bias": (tmp,),
            f"{r}x{r}/Conv1_down/weight": (out, tmp, 3, 3),
            f"{r}x{r}/Conv1_down/bias": (out,),
            f"{r}x{r}/Skip/weight": (out, tmp, 1, 1),
        }
        r //= 2
    c = ch(4)
    return shapes | {
        "4x4/Conv/weight": (c, c + 1, 3, 3),
        "4x4/Conv/bias": (c,),
        "4x4/Dense0/weight": (c, c * 16),
        "4x4/Dense0/bias": (c,),
        "Output/weight": (1, c),
        "Output/bias": (1,),
    }


def test_the_discriminator_has_every_variable_legacy_reads(exported: Path) -> None:
    d = read_nvidia_pickle(exported).networks["D"]
    static = d.init_kwargs
    assert static["architecture"] == "resnet" and static["resolution"] == 64
    want = _nvidia_d_shapes(64, 2 * static["fmap_base"], static["fmap_max"])
    got = {}
    for name, value in d.state_dict.items():  # legacy: conv .transpose(3, 2, 0, 1), dense .T
        got[name] = tuple(
            value.permute(3, 2, 0, 1).shape if value.ndim == 4 else reversed(value.shape)
        )
    assert got == want
    assert all(float(v.abs().sum()) == 0 for v in d.state_dict.values())


@pytest.mark.parametrize("config", ["afhq 512", "ffhq 256 (paper256", "auto 256"])
def test_published_configurations_export_under_nvidias_names_and_shapes(
    tmp_path: Path, config: str
) -> None:
    """A generator of each published StyleGAN2-ADA configuration (random weights) exports to
    variables that legacy's rules turn into exactly NVIDIA's G parameters and shapes."""
    manifest = json.loads((DATA / "nvidia_stylegan2_ada_manifest.json").read_text())
    key = next(k for k in manifest if config in k)
    entry = manifest[key]
    our_config, _ = config_from_init_kwargs(entry["init_kwargs"])
    generator = our_config.build()
    latent_avg = torch.zeros(our_config.style_dim)
    loaded = type("Loaded", (), {"generator": generator, "latent_avg": latent_avg})()
    path = export_tf_pickle(loaded, tmp_path / "g.pkl")
    record = read_nvidia_pickle(path).networks["Gs"]
    converted = {}
    for name, value in record.state_dict.items():
        found = _tf_rename(name, value, "x")
        if found is not None:
            converted[found[0]] = squeezed(found[1].shape)
    want = {}
    for line in (DATA / "nvidia_stylegan2_ada_manifest.tsv").read_text().splitlines()[1:]:
        row_config, _kind, name, shape = line.split("\t")
        if row_config == key and not name.endswith(("resample_filter", "act_filter")):
            dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
            want[name] = squeezed(dims)
    assert len(want) > 20 and converted == want


def test_stylegan3_is_refused_with_a_reason(tmp_path: Path) -> None:
    sg3 = load_generator(DATA / "sg3_t_64.pkl")
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        export_tf_pickle(sg3, tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()


def test_the_file_is_plain_data_for_the_pickle_disassembler(exported: Path) -> None:
    ops = {op.name for op, _, _ in pickletools.genops(exported.read_bytes())}
    assert not ops & {"REDUCE_EX", "INST", "OBJ", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}


@pytest.mark.parametrize("multiplier", [2, 1])
def test_a_rosinality_generator_round_trips_exactly(tmp_path: Path, multiplier: int) -> None:
    """Our own generators (rosinality's channel tables, noise buffers, no clamp) export and
    read back bit for bit: the same weights, the same images with the stored noise."""
    from stylegan2.architecture import GeneratorConfig

    generator = GeneratorConfig(size=32, style_dim=64, n_mlp=2, channel_multiplier=multiplier)
    generator = generator.build().eval()
    latent_avg = torch.randn(64)
    loaded = type("Loaded", (), {"generator": generator, "latent_avg": latent_avg})()
    back = load_generator(export_tf_pickle(loaded, tmp_path / "g.pkl"))
    ours, theirs = generator.state_dict(), back.generator.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0, msg=key)
    torch.testing.assert_close(back.latent_avg, latent_avg, rtol=0, atol=0)
    z = torch.randn(2, 64)
    with torch.no_grad():
        want = generator([generator.style(z)], input_is_latent=True, randomize_noise=False)[0]
        got = back.render_wplus(back.to_wplus(z))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)

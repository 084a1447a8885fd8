"""NVIDIA's StyleGAN2 (stylegan2-ada-pytorch and TensorFlow pickles) as our Generator: the
fixtures' outputs within 1e-4, conv_clamp honoured, the published configurations' shapes."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stylegan2.checkpoint import CheckpointError, GeneratorConfig, load_generator, save_generator
from stylegan2.model import Generator
from stylegan2.nvidia_pickle import NetworkRecord, read_nvidia_pickle
from stylegan2.nvidia_stylegan2 import (
    config_from_init_kwargs,
    convert_pytorch,
    convert_tensorflow,
    nvidia_key_map,
    squeezed,
)
from stylegan2.ops import upfirdn2d_reference

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"  # README.md says what
TOL = 1e-4


@pytest.fixture(scope="module")
def outputs() -> dict:
    return torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True)


@pytest.fixture(scope="module")
def record() -> NetworkRecord:
    return read_nvidia_pickle(NVIDIA / "ada_sg2_64.pkl").networks["G_ema"]


@pytest.fixture(scope="module")
def tf_record() -> NetworkRecord:
    return read_nvidia_pickle(NVIDIA / "ada_sg2_64_tf.pkl").networks["Gs"]


def wplus(g: Generator, z: torch.Tensor) -> torch.Tensor:
    return g.style(z).unsqueeze(1).repeat(1, g.n_latent, 1)


def render(g: Generator, ws: torch.Tensor, noise: str = "const") -> torch.Tensor:
    if noise == "none":
        zeros = [torch.zeros_like(getattr(g.noises, f"noise_{i}")) for i in range(g.num_layers)]
        return g([ws], input_is_latent=True, noise=zeros)[0]
    return g([ws], input_is_latent=True, randomize_noise=False)[0]


def every_field(g: Generator, latent_avg: torch.Tensor, out: dict) -> dict[str, float]:
    """Max |ours - NVIDIA's| for every output field of the fixture."""
    with torch.no_grad():
        ws = wplus(g, out["z"])
        mix = torch.cat([ws[:, : out["mix_index"]], wplus(g, out["z2"])[:, out["mix_index"] :]], 1)
        trunc = latent_avg.lerp(ws, 0.7)
        ours = {
            "ws_z": ws,
            "img_z": render(g, ws),
            "img_z_trunc07": render(g, trunc),
            "ws_mix": mix,
            "img_ws_mix": render(g, out["ws_mix"]),
            "img_z_nonoise": render(g, ws, noise="none"),
        }
    return {k: (v - out[k]).abs().max().item() for k, v in ours.items()}


@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("reference_ops", [False, True])
def test_every_output_field_matches_nvidias_generator(
    framework: str, reference_ops: bool, record, tf_record, outputs
) -> None:
    weights = convert_pytorch(record) if framework == "pytorch" else convert_tensorflow(tf_record)
    g = weights.generator.set_reference_ops(reference_ops)
    errors = every_field(g, weights.latent_avg, outputs)
    assert set(errors) == {k for k in outputs if k.startswith(("img_", "ws_"))}
    assert max(errors.values()) < TOL, errors
    assert outputs["img_z"].abs().max() > 1  # the images are not trivially small


def test_the_architecture_comes_from_the_file(record, tf_record) -> None:
    for weights in (convert_pytorch(record), convert_tensorflow(tf_record)):
        config = weights.config
        assert (config.size, config.style_dim, config.n_mlp) == (64, 128, 8)
        # channel_base 2048, channel_max 64: min(2048 // res, 64) -- no rosinality table
        assert config.channels == (64, 64, 64, 64, 32)
        assert torch.equal(weights.latent_avg, record.state_dict["mapping.w_avg"])
    assert convert_pytorch(record).config.conv_clamp == 256
    assert convert_tensorflow(tf_record).config.conv_clamp is None  # the TF file has none
    g = convert_pytorch(record).generator
    assert torch.equal(
        g.noises.noise_3[0, 0], record.state_dict["synthesis.b16.conv0.noise_const"]
    )  # the stored noise is the fixed noise


def test_stylegan3s_networks_stylegan2_keyword_layout_is_read(record, outputs) -> None:
    """The StyleGAN2 files published with StyleGAN3 (its training.networks_stylegan2) take
    the synthesis arguments as the Generator's own keywords."""
    kwargs = json.loads(json.dumps(record.init_kwargs))
    flat = {**kwargs, **kwargs.pop("synthesis_kwargs"), "fused_modconv_default": "inference_only"}
    del flat["synthesis_kwargs"]
    weights = convert_pytorch(dataclasses.replace(record, init_kwargs=flat))
    assert weights.config == convert_pytorch(record).config
    assert max(every_field(weights.generator, weights.latent_avg, outputs).values()) < TOL
    with pytest.raises(CheckpointError, match="unknown generator argument frobnicate"):
        convert_pytorch(dataclasses.replace(record, init_kwargs={**flat, "frobnicate": 1}))


# -- conv_clamp, against NVIDIA's formulas ----------------------------------------------------


def nvidia_generator(
    sd: dict[str, torch.Tensor], z: torch.Tensor, *, clamp: float | None, psi: float = 1.0
) -> torch.Tensor:
    """NVIDIA's training.networks Generator (architecture 'skip', fp32, noise_mode 'const'),
    written out from their code op by op over their own state dict: per-sample modulated
    weights, a transposed conv + FIR (gain 4, pad 1) for 2x layers, bias_act with gain
    sqrt(2) then the clamp, ToRGB with weight gain 1/sqrt(in) and its own clamp."""
    sqrt2 = math.sqrt(2)
    x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    i = 0
    while f"mapping.fc{i}.weight" in sd:
        w, b = sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"]
        x = F.leaky_relu(x @ (w * (0.01 / math.sqrt(w.shape[1]))).t() + b * 0.01, 0.2) * sqrt2
        i += 1
    w_dim = x.shape[1]
    w = sd["mapping.w_avg"].lerp(x, psi)  # [N, w_dim]: every W+ entry the same
    f = sd["synthesis.b4.resample_filter"]

    def act(y: torch.Tensor, bias: torch.Tensor, gain: float, limit: float | None) -> torch.Tensor:
        y = y + bias.view(1, -1, 1, 1)
        y = F.leaky_relu(y, 0.2) * gain if gain != 1 else y
        return y.clamp(-limit, limit) if limit is not None else y

    def conv(prefix: str, y: torch.Tensor, up: bool) -> torch.Tensor:
        styles = w @ (sd[f"{prefix}.affine.weight"] / math.sqrt(w_dim)).t()
        styles = styles + sd[f"{prefix}.affine.bias"]
        weight = sd[f"{prefix}.weight"][None] * styles[:, None, :, None, None]
        weight = weight * (weight.square().sum([2, 3, 4]) + 1e-8).rsqrt()[..., None, None, None]
        outs = []
        for n in range(y.shape[0]):
            if up:
                o = F.conv_transpose2d(y[n : n + 1], weight[n].transpose(0, 1), stride=2)
                outs.append(upfirdn2d_reference(o, f * 4, pad=(1, 1)))
            else:
                outs.append(F.conv2d(y[n : n + 1], weight[n], padding=1))
        y = torch.cat(outs) + sd[f"{prefix}.noise_const"] * sd[f"{prefix}.noise_strength"]
        return act(y, sd[f"{prefix}.bias"], sqrt2, None if clamp is None else clamp * 1)

    def torgb(prefix: str, y: torch.Tensor) -> torch.Tensor:
        styles = w @ (sd[f"{prefix}.affine.weight"] / math.sqrt(w_dim)).t()
        styles = (styles + sd[f"{prefix}.affine.bias"]) / math.sqrt(y.shape[1])
        weight = sd[f"{prefix}.weight"][None] * styles[:, None, :, None, None]
        out = torch.cat([F.conv2d(y[n : n + 1], weight[n]) for n in range(y.shape[0])])
        return act(out, sd[f"{prefix}.bias"], 1, clamp)

    y = sd["synthesis.b4.const"][None].repeat(z.shape[0], 1, 1, 1)
    y = conv("synthesis.b4.conv1", y, up=False)
    img = torgb("synthesis.b4.torgb", y)
    res = 8
    while f"synthesis.b{res}.conv0.weight" in sd:
        y = conv(f"synthesis.b{res}.conv0", y, up=True)
        y = conv(f"synthesis.b{res}.conv1", y, up=False)
        img = upfirdn2d_reference(img, f * 4, up=2, pad=(2, 1)) + torgb(
            f"synthesis.b{res}.torgb", y
        )
        res *= 2
    return img


def test_conv_clamp_is_honoured(record, outputs) -> None:
    """The fixture's activations stay far below its conv_clamp 256, so the clamp is checked
    against NVIDIA's formulas (themselves checked on the fixture first) at a clamp that
    bites: 0.5."""
    with torch.no_grad():
        mine = nvidia_generator(record.state_dict, outputs["z"], clamp=256)
        assert (mine - outputs["img_z"]).abs().max() < TOL
        mine = nvidia_generator(record.state_dict, outputs["z"], clamp=256, psi=0.7)
        assert (mine - outputs["img_z_trunc07"]).abs().max() < TOL

        kwargs = json.loads(json.dumps(record.init_kwargs))
        kwargs["synthesis_kwargs"]["conv_clamp"] = 0.5
        clamped = dataclasses.replace(record, init_kwargs=kwargs)
        weights = convert_pytorch(clamped)
        assert weights.config.conv_clamp == 0.5
        expected = nvidia_generator(record.state_dict, outputs["z"], clamp=0.5)
        assert expected.abs().max() <= 0.5 * 5  # five clamped RGB layers summed
        assert (expected - outputs["img_z"]).abs().max() > 1  # the clamp changes the image
        for reference_ops in (False, True):
            g = weights.generator.set_reference_ops(reference_ops)
            got = render(g, wplus(g, outputs["z"]))
            assert (got - expected).abs().max() < TOL


def test_a_converted_generator_saves_and_loads_back_with_its_architecture(
    record, outputs, tmp_path: Path
) -> None:
    weights = convert_pytorch(record)
    path = tmp_path / "ada.pt"
    save_generator(path, weights.generator, weights.latent_avg, {"source": "ada_sg2_64.pkl"})
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["metadata"]["stylegan2"]["channels"] == [64, 64, 64, 64, 32]
    assert ckpt["metadata"]["stylegan2"]["conv_clamp"] == 256
    loaded = load_generator(path)
    assert loaded.generator.conv_clamp == 256 and loaded.generator.channels[64] == 32
    assert loaded.identity["channels"] == [64, 64, 64, 64, 32]
    errors = every_field(loaded.generator, loaded.latent_avg, outputs)
    assert max(errors.values()) < TOL, errors


def test_z_dim_other_than_w_dim_round_trips(tmp_path: Path) -> None:
    g = GeneratorConfig(8, style_dim=32, n_mlp=2, z_dim=16).build()
    assert g.style[1].weight.shape == (32, 16) and g.mean_latent(4).shape == (1, 32)
    save_generator(tmp_path / "g.pt", g, torch.zeros(32), {})
    assert load_generator(tmp_path / "g.pt").generator.z_dim == 16


# -- the published configurations (no weights) ------------------------------------------------


def manifest() -> dict[str, dict[str, tuple[int, ...]]]:
    configs: dict[str, dict[str, tuple[int, ...]]] = {}
    lines = (NVIDIA / "nvidia_stylegan2_ada_manifest.tsv").read_text().splitlines()[1:]
    for line in lines:
        config, _kind, name, shape = line.split("\t")
        dims = () if shape == "scalar" else tuple(int(n) for n in shape.split("x"))
        configs.setdefault(config, {})[name] = dims
    return configs


def test_the_published_stylegan2_ada_configurations_build_with_matching_shapes() -> None:
    described = json.loads((NVIDIA / "nvidia_stylegan2_ada_manifest.json").read_text())
    shapes = manifest()
    assert set(shapes) == set(described)
    for name, entry in described.items():
        config, lr_mul = config_from_init_kwargs(entry["init_kwargs"], name)
        assert lr_mul == 0.01
        generator = config.build()
        assert generator.n_latent == entry["num_ws"]
        ours = generator.state_dict()
        keys = nvidia_key_map(config)
        for key, shape in shapes[name].items():
            if key.endswith("resample_filter"):
                assert shape == (4, 4)
            elif key == "mapping.w_avg":
                assert shape == (config.style_dim,)
            else:
                assert squeezed(ours[keys[key]].shape) == squeezed(shape), (name, key)
        covered = set(keys.values())
        kernels = {k for k in ours if k.endswith((".blur.kernel", ".upsample.kernel"))}
        assert set(ours) == covered | kernels, name
        weights = sum(math.prod(s) for k, s in shapes[name].items() if k in keys)
        assert weights == sum(ours[k].numel() for k in covered)
    # rosinality's own tables where NVIDIA's channel_base gives them (config-f and config-e)
    ffhq = config_from_init_kwargs(described[next(iter(described))]["init_kwargs"])[0]
    assert ffhq == GeneratorConfig(1024, 512, 8, 2, conv_clamp=256.0)
    auto = [v for k, v in described.items() if k.startswith("stylegan2-ada auto")][0]
    assert config_from_init_kwargs(auto["init_kwargs"])[0] == GeneratorConfig(
        256, 512, 2, 1, conv_clamp=256.0
    )


# -- what is refused --------------------------------------------------------------------------


def test_architectures_we_do_not_compute_are_refused_by_name(record, tf_record) -> None:
    def with_kwargs(**changes: object) -> NetworkRecord:
        kwargs = json.loads(json.dumps(record.init_kwargs))
        for key, value in changes.items():
            group, _, name = key.rpartition("__")
            (kwargs[group] if group else kwargs)[name] = value
        return dataclasses.replace(record, init_kwargs=kwargs)

    for changes, message in [
        ({"c_dim": 10}, "c_dim is 10; only 0 is supported .conditional"),
        ({"synthesis_kwargs__architecture": "resnet"}, "architecture is 'resnet'"),
        ({"synthesis_kwargs__resample_filter": [1, 2, 1]}, r"resample_filter \[1, 2, 1\]"),
        ({"mapping_kwargs__frobnicate": 1}, "unknown generator argument mapping_kwargs.frobnicate"),
        ({"img_channels": 1}, "img_channels is 1"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            convert_pytorch(with_kwargs(**changes))

    orig = dict(tf_record.state_dict)
    orig["synthesis/ToRGB_lod1/weight"] = torch.zeros(1, 1, 64, 3)
    with pytest.raises(
        CheckpointError, match=r"'synthesis/ToRGB_lod1/weight' belongs to the 'orig'"
    ):
        convert_tensorflow(dataclasses.replace(tf_record, state_dict=orig))
    old = dataclasses.replace(tf_record, attrs={**tf_record.attrs, "": {"version": 3}})
    with pytest.raises(CheckpointError, match="TensorFlow network version 3"):
        convert_tensorflow(old)
    odd = dataclasses.replace(tf_record, init_kwargs={**tf_record.init_kwargs, "fancy": 1})
    with pytest.raises(CheckpointError, match="unknown TensorFlow generator argument 'fancy'"):
        convert_tensorflow(odd)

    bad = dict(record.state_dict)
    bad["synthesis.b8.conv0.weight"] = bad["synthesis.b8.conv0.weight"].transpose(0, 1)[:, :32]
    with pytest.raises(CheckpointError, match=r"wrong shape for 'synthesis.b8.conv0.weight'"):
        convert_pytorch(dataclasses.replace(record, state_dict=bad))
    del bad["synthesis.b8.conv0.weight"]
    with pytest.raises(CheckpointError, match="missing weights .*synthesis.b8.conv0.weight"):
        convert_pytorch(dataclasses.replace(record, state_dict=bad))

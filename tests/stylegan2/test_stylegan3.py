"""StyleGAN3 (stylegan2/stylegan3/): layout against NVIDIA's manifest, outputs against NVIDIA's
fixtures, the fast ops against the reference ops, the checkpoint layout.

The fixtures (tests/data/nvidia/README.md) were written by NVIDIA's own code: the manifests
list every parameter and buffer of the published configurations, `sg3_{t,r}_64.pkl` hold
small random generators and `*_outputs.pt` what NVIDIA's G_ema computed from them.
"""

import csv
import json
import math
import pathlib

import pytest
import torch

import stylegan2.stylegan3.fir as fir_module
import stylegan2.stylegan3.ops as ops_module
from stylegan2.errors import CheckpointError
from stylegan2.nvidia_pickle import read_nvidia_pickle
from stylegan2.ops import upfirdn2d_reference
from stylegan2.stylegan3 import (
    GeneratorConfig,
    build,
    from_nvidia,
    is_stylegan3_checkpoint,
    load_stylegan3,
    save_stylegan3,
)
from stylegan2.stylegan3.filters import design_lowpass_filter
from stylegan2.stylegan3.fir import (
    BandedFIR,
    LayerFilters,
    fir_matrix,
    upfirdn2d_grouped_reference,
)
from stylegan2.stylegan3.ops import (
    filtered_lrelu,
    filtered_lrelu_reference,
    modulated_conv2d,
    modulated_conv2d_reference,
)

NVIDIA = pathlib.Path(__file__).resolve().parents[1] / "data" / "nvidia"
MANIFEST_CONFIGS = [
    "stylegan3-t 1024 (ffhq, metfaces)",
    "stylegan3-t 512 (afhqv2)",
    "stylegan3-r 1024 (ffhq, metfaces)",
    "stylegan3-r 512 (afhqv2)",
]
ATOL = 1e-4  # "the same generator": every output within this (max absolute difference)


@pytest.fixture(scope="module")
def manifest():
    with open(NVIDIA / "nvidia_stylegan3_manifest.json") as f:
        configs = json.load(f)
    with open(NVIDIA / "nvidia_stylegan3_manifest.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return configs, rows


def _record(cfg):
    return read_nvidia_pickle(NVIDIA / f"sg3_{cfg}_64.pkl").networks["G_ema"]


@pytest.fixture(scope="module", params=["t", "r"])
def fixture(request):
    """(config letter, the G_ema record, NVIDIA's outputs, our generator from the record)."""
    cfg = request.param
    record = _record(cfg)
    outputs = torch.load(NVIDIA / f"sg3_{cfg}_64_outputs.pt", weights_only=True)
    return cfg, record, outputs, from_nvidia(record)


# -- the layout -----------------------------------------------------------------------------


@pytest.mark.parametrize("config", MANIFEST_CONFIGS)
def test_state_dict_names_and_shapes_equal_the_manifest(manifest, config):
    configs, rows = manifest
    entry = configs[config]
    g = build(entry["init_kwargs"], seed=0)
    expected = {r["name"]: (r["kind"], r["shape"]) for r in rows if r["config"] == config}
    assert expected, "no manifest rows for this config"
    got = {k: ("param", "x".join(map(str, p.shape))) for k, p in g.named_parameters()}
    got |= {k: ("buffer", "x".join(map(str, b.shape)) or "scalar") for k, b in g.named_buffers()}
    assert got == expected
    assert set(g.state_dict()) == set(expected)
    assert g.num_ws == entry["num_ws"]
    assert sum(p.numel() for p in g.parameters()) == entry["params"]
    assert g.synthesis.layer_names == list(entry["layers"])
    for name, want in entry["layers"].items():
        spec = getattr(g.synthesis, name).spec
        assert [spec.in_size] * 2 == want["in_size"] and [spec.out_size] * 2 == want["out_size"]
        assert (spec.in_channels, spec.out_channels) == (want["in_channels"], want["out_channels"])


def test_layout_and_designed_filters_equal_the_files(fixture):
    cfg, record, outputs, _ = fixture
    designed = build(record.init_kwargs, seed=1)
    assert designed.synthesis.layer_names == outputs["layer_names"]
    assert designed.num_ws == outputs["num_ws"]
    filters = [k for k in record.state_dict if k.endswith(("up_filter", "down_filter"))]
    assert len(filters) == 2 * (len(outputs["layer_names"]) - 1)  # ToRGB has none
    radial = [k for k in filters if record.state_dict[k].ndim == 2]
    assert bool(radial) == (cfg == "r")
    state = designed.state_dict()
    for key in filters:
        torch.testing.assert_close(state[key], record.state_dict[key], rtol=0, atol=1e-7)


def test_kaiser_and_jinc_design_equal_scipy():
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")
    import numpy as np

    for numtaps, cutoff, width, fs in [
        (12, 2.0, 12.0, 32),
        (24, 10.08, 11.8, 128),
        (12, 32, 14.8, 128),
    ]:
        want = signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        got = design_lowpass_filter(numtaps, cutoff, width, fs).double().numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    numtaps, cutoff, width, fs = 12, 5.04, 21.9, 64
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (fs / 2)))
    f *= np.outer(np.kaiser(numtaps, beta), np.kaiser(numtaps, beta))
    got = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True).double().numpy()
    np.testing.assert_allclose(got, f / f.sum(), rtol=0, atol=1e-7)


def test_init_kwargs_are_checked():
    kwargs = {"z_dim": 8, "w_dim": 8, "img_resolution": 16}
    with pytest.raises(ValueError, match="use_fourier_features"):
        GeneratorConfig.from_init_kwargs({**kwargs, "use_fourier_features": True})
    with pytest.raises(ValueError, match="freeze_layers"):
        GeneratorConfig.from_init_kwargs({**kwargs, "mapping_kwargs": {"freeze_layers": 1}})
    with pytest.raises(ValueError, match="img_resolution"):
        GeneratorConfig.from_init_kwargs({**kwargs, "img_resolution": 10**6})
    with pytest.raises(ValueError, match="channel_base"):
        GeneratorConfig.from_init_kwargs({**kwargs, "channel_base": "many"})
    config = GeneratorConfig.from_init_kwargs({**kwargs, "mapping_kwargs": {"num_layers": 3}})
    assert config.mapping_layers == 3
    assert GeneratorConfig.from_init_kwargs(config.to_init_kwargs()) == config


# -- NVIDIA's outputs -----------------------------------------------------------------------


def test_outputs_equal_nvidias(fixture):
    _, _, out, g = fixture
    with torch.no_grad():
        ws = g.mapping(out["z"])
        assert ws.shape == (3, g.num_ws, g.w_dim) == tuple(out["ws_z"].shape)
        torch.testing.assert_close(ws, out["ws_z"], rtol=0, atol=ATOL)
        torch.testing.assert_close(g(out["z"]), out["img_z"], rtol=0, atol=ATOL)
        torch.testing.assert_close(
            g(out["z"], truncation=0.7), out["img_z_trunc07"], rtol=0, atol=ATOL
        )
        torch.testing.assert_close(g.synthesis(out["ws_mix"]), out["img_ws_mix"], rtol=0, atol=ATOL)
        # The mixed W+ is the fixture's recipe: the first mix_index rows from z, the rest z2.
        k = out["mix_index"]
        mixed = torch.cat([ws[:, :k], g.mapping(out["z2"])[:, k:]], dim=1)
        torch.testing.assert_close(mixed, out["ws_mix"], rtol=0, atol=ATOL)
    assert g.resolution == 64 and g.z_dim == 64 and g.w_dim == 64 and g.num_ws == 16


def test_reference_ops_equal_nvidias(fixture):
    """The readable path defines the behaviour: NVIDIA's outputs again (one image, slow ops)."""
    _, _, out, g = fixture
    try:
        with torch.no_grad():
            img = g.set_reference_ops(True).synthesis(out["ws_mix"][:1])
    finally:
        g.set_reference_ops(False)
    torch.testing.assert_close(img, out["img_ws_mix"][:1], rtol=0, atol=ATOL)


def test_truncation_moves_towards_w_avg(fixture):
    _, _, out, g = fixture
    with torch.no_grad():
        ws = g.mapping(out["z"])
        torch.testing.assert_close(g.mapping(out["z"], truncation=0.7), g.w_avg.lerp(ws, 0.7))
        assert torch.equal(g.mapping(out["z"], truncation=0.0), g.w_avg.expand_as(ws))
    assert torch.equal(g.w_avg, _record(fixture[0]).state_dict["mapping.w_avg"])


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_fast_and_reference_gradients_agree(cfg):
    """Backward through the custom ops (recomputed pre-activation, FIR adjoints, the fused
    demodulation) against autograd through the reference ops, in a whole small network of
    each config (every kind of layer: up by 2 and 4, cropping, radial, ToRGB)."""
    extra = {"conv_kernel": 1, "use_radial_filters": True} if cfg == "r" else {}
    g = build(
        {"z_dim": 16, "w_dim": 16, "img_resolution": 32, "channel_base": 512,
         "channel_max": 16, **extra},
        seed=0,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(5)
    for name, buffer in g.named_buffers():
        if name.endswith("magnitude_ema"):
            buffer.copy_(torch.rand((), generator=gen) + 0.5)
    ws = torch.randn(2, g.num_ws, g.w_dim, generator=gen)
    weights = torch.randn(2, 3, 32, 32, generator=gen)

    def grads(reference: bool):
        g.set_reference_ops(reference)
        g.zero_grad(set_to_none=True)
        w = ws.clone().requires_grad_(True)
        img = g.synthesis(w)
        (img * weights).sum().backward()
        result = {"image": img.detach(), "ws": w.grad}
        return result | {n: p.grad for n, p in g.synthesis.named_parameters()}

    fast, ref = grads(False), grads(True)
    assert fast.keys() == ref.keys()
    for name, want in ref.items():
        scale = want.abs().max().item()
        assert scale > 0, name
        torch.testing.assert_close(fast[name], want, rtol=0, atol=1e-4 * scale, msg=name)


# -- the ops -------------------------------------------------------------------------------


def _filtered_lrelu_cases():
    smooth = design_lowpass_filter(12, 4.0, 8.0, 32)
    long = design_lowpass_filter(24, 5.0, 20.0, 64)
    radial = design_lowpass_filter(12, 6.0, 10.0, 32, radial=True)
    return {
        "up2-down2": (smooth, smooth, 2, 2, (9, 8, 9, 8), 20),
        "up4-crop": (long, smooth, 4, 2, (-6, -9, -6, -9), 18),
        "radial": (smooth, radial, 2, 2, (11, 10, 8, 13), 17),
        "critical-crop": (smooth, smooth, 2, 2, (-11, -12, -11, -12), 30),
        "torgb": (None, None, 1, 1, (0, 0, 0, 0), 16),
    }


@pytest.mark.parametrize("case", list(_filtered_lrelu_cases()))
@pytest.mark.parametrize("pieces", ["whole", "blocks-and-chunks"])
def test_filtered_lrelu_matches_reference(case, pieces, monkeypatch):
    if pieces != "whole":  # several blocks per FIR matrix, one channel at a time
        monkeypatch.setattr(fir_module, "BLOCK_INPUTS", 9)
        monkeypatch.setattr(ops_module, "CHUNK_ELEMENTS", 1)
    fu, fd, up, down, padding, size = _filtered_lrelu_cases()[case]
    torgb = case == "torgb"
    gain, slope = (1.0, 1.0) if torgb else (math.sqrt(2), 0.2)
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(2, 3, size, size, generator=gen, dtype=torch.float64) * 4).requires_grad_()
    scale = (torch.rand(2, 3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    bias = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()
    clamp = 3.0  # low enough that the clamp is active somewhere
    filters = LayerFilters(fu, fd, up, down, padding, size)
    out = filtered_lrelu(x, filters, bias, gain, slope, clamp, scale=scale)
    want = filtered_lrelu_reference(
        x * scale[:, :, None, None], fu, fd, bias, up, down, padding, gain, slope, clamp
    )
    assert out.shape == want.shape and filters.out_size == want.shape[2]
    unclamped = filtered_lrelu_reference(
        x * scale[:, :, None, None], fu, fd, bias, up, down, padding, gain, slope, None
    )
    assert (unclamped - want).abs().max() > 0.1, "the case should exercise the clamp"
    torch.testing.assert_close(out, want, rtol=0, atol=1e-10)
    grad = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    got = torch.autograd.grad(out, (x, scale, bias), grad)
    expected = torch.autograd.grad(want, (x, scale, bias), grad)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_fir_matrix_is_upfirdn():
    gen = torch.Generator().manual_seed(2)
    taps = torch.randn(7, generator=gen, dtype=torch.float64)
    x = torch.randn(1, 1, 1, 13, generator=gen, dtype=torch.float64)
    for up, down, p0, p1 in [
        (1, 1, 3, 3),
        (2, 1, 4, -1),
        (4, 1, -3, 2),
        (1, 2, 0, 0),
        (1, 3, 2, 5),
    ]:
        want = upfirdn2d_reference(x, taps.view(1, -1), up=up, down=down, pad=(p0, p1, 0, 0))
        want = want[:, :, :1]  # the up-sampling also inserted zero rows
        matrix = fir_matrix(13, taps.tolist(), up, down, p0, p1)
        torch.testing.assert_close(matrix @ x[0, 0, 0], want[0, 0, 0], rtol=0, atol=1e-12)
        banded = BandedFIR(matrix)
        torch.testing.assert_close(banded.apply(x, 3), want, rtol=0, atol=1e-12)


def test_grouped_upfirdn_reference_is_the_projects_reference():
    """NVIDIA's operation order (grouped conv, separable passes) and stylegan2.ops' one-channel
    2-D reference compute the same function."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 11, 11, generator=gen, dtype=torch.float64)
    f = torch.rand(6, generator=gen, dtype=torch.float64)
    got = upfirdn2d_grouped_reference(x, f, up=2, down=1, padding=(3, 2, 1, 4), gain=4)
    want = upfirdn2d_reference(x, torch.outer(f, f) * 4, up=2, pad=(3, 2, 1, 4))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_matches_reference(demodulate):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, 9, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    gain = torch.tensor(0.7, dtype=torch.float64)
    want = modulated_conv2d_reference(x, w, s, demodulate, padding=2, input_gain=gain)
    out, dcoefs = modulated_conv2d(x, w, s, demodulate, padding=2, input_gain=gain)
    assert (dcoefs is None) == (not demodulate)
    if dcoefs is not None:
        out = out * dcoefs[:, :, None, None]
    torch.testing.assert_close(out, want, rtol=0, atol=1e-10)
    grad = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(
        torch.autograd.grad(out, (x, w, s), grad),
        torch.autograd.grad(want, (x, w, s), grad),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_prepared_filters_follow_a_loaded_state_dict(fixture):
    """The fast path caches its FIR matrices; loading other filters must replace them."""
    _, record, out, g = fixture
    ws = out["ws_mix"][:1]
    state = dict(record.state_dict)
    key = f"synthesis.{g.synthesis.layer_names[0]}.up_filter"
    changed = {**state, key: state[key] * 0.5}
    fresh = from_nvidia(type(record)(**{**vars(record), "state_dict": changed}))
    try:
        with torch.no_grad():
            g.synthesis(ws)  # prepares the file's filters
            g.load_state_dict(changed)
            reloaded = g.synthesis(ws)
            want = fresh.synthesis(ws)
    finally:
        g.load_state_dict(state)
    torch.testing.assert_close(reloaded, want, rtol=0, atol=1e-6)
    assert (reloaded - out["img_ws_mix"][:1]).abs().max() > 1e-3  # the change did matter


# -- the module's contract -----------------------------------------------------------------


def test_layer_groups_map_wplus_to_layers(fixture):
    _, _, _, g = fixture
    groups = g.layer_groups()
    assert [group.wplus_index for group in groups] == list(range(g.num_ws))
    assert groups[0].name == "synthesis.input" and groups[0].is_input
    assert [group.name for group in groups[1:]] == [
        f"synthesis.{name}" for name in g.synthesis.layer_names
    ]
    assert [group.is_rgb for group in groups] == [False] * (g.num_ws - 1) + [True]
    # every synthesis parameter belongs to exactly one group, and no mapping parameter does
    owners = {
        name: [grp.name for grp in groups if name.startswith(grp.name + ".")]
        for name, _ in g.named_parameters()
    }
    assert all(len(o) == 1 for n, o in owners.items() if n.startswith("synthesis."))
    assert all(not o for n, o in owners.items() if n.startswith("mapping."))
    # ...and the index is the W+ entry each group's module really reads
    seen = {}
    modules = dict(g.named_modules())
    hooks = [
        modules[grp.name].register_forward_pre_hook(
            lambda _, args, name=grp.name: seen.__setitem__(name, args[-1])
        )
        for grp in groups
    ]
    ws = torch.randn(1, g.num_ws, g.w_dim)
    try:
        with torch.no_grad():
            g.synthesis(ws)
    finally:
        for hook in hooks:
            hook.remove()
    for grp in groups:
        assert torch.equal(seen[grp.name], ws[:, grp.wplus_index]), grp.name


def test_conditional_mapping_needs_a_label():
    g = build(
        {"z_dim": 8, "w_dim": 8, "c_dim": 4, "img_resolution": 16, "channel_base": 64,
         "channel_max": 8, "num_layers": 4},
        seed=0,
    )  # fmt: skip
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match=r"c_dim=4.*pass c"):
        g.mapping(z)
    c = torch.eye(4)[:2]
    assert g.mapping(z, c=c).shape == (2, g.num_ws, 8)
    assert g(z, c=c).shape == (2, 3, 16, 16)


def test_from_nvidia_refuses_a_modified_architecture(fixture):
    _, record, _, g = fixture
    name = g.synthesis.layer_names[3]
    attrs = {**record.attrs, f"synthesis.{name}": {**record.attrs[f"synthesis.{name}"]}}
    attrs[f"synthesis.{name}"]["padding"] = [0, 0, 0, 0]
    modified = type(record)(**{**vars(record), "attrs": attrs})
    with pytest.raises(CheckpointError, match=rf"{name}\.padding"):
        from_nvidia(modified)
    state = dict(record.state_dict)
    del state["mapping.fc1.bias"]
    with pytest.raises(CheckpointError, match=r"missing mapping\.fc1\.bias"):
        from_nvidia(type(record)(**{**vars(record), "state_dict": state}))
    state = {**record.state_dict, "mapping.w_avg": torch.zeros(7)}
    with pytest.raises(CheckpointError, match=r"mapping\.w_avg has shape \[7\]"):
        from_nvidia(type(record)(**{**vars(record), "state_dict": state}))
    with pytest.raises(CheckpointError, match="SynthesisNetwork"):
        from_nvidia(type(record)(**{**vars(record), "class_name": "SynthesisNetwork"}))


# -- our checkpoint layout -----------------------------------------------------------------


def test_checkpoint_round_trip(fixture, tmp_path):
    _, record, out, g = fixture
    path = tmp_path / "sg3.pt"
    digest = save_stylegan3(path, g, {"base": {"name": "fixture"}, "steps": [1, 2]})
    assert len(digest) == 64
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no code, no classes
    assert is_stylegan3_checkpoint(raw)
    assert raw["metadata"]["family"] == "stylegan3"
    assert raw["metadata"]["stylegan3"]["init_kwargs"] == record.init_kwargs
    json.dumps(raw["metadata"])  # plain data
    loaded = load_stylegan3(path)
    assert loaded.metadata["base"] == {"name": "fixture"} and loaded.metadata["steps"] == [1, 2]
    original = g.state_dict()
    restored = loaded.generator.state_dict()
    assert list(restored) == list(original)
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert torch.equal(loaded.latent_avg, g.w_avg)
    with torch.no_grad():
        image = loaded.generator.synthesis(out["ws_mix"][:1])
    torch.testing.assert_close(image, out["img_ws_mix"][:1], rtol=0, atol=ATOL)


def test_checkpoint_refuses_what_it_cannot_read(tmp_path, fixture):
    _, _, _, g = fixture
    path = tmp_path / "sg3.pt"
    save_stylegan3(path, g)
    ckpt = torch.load(path, weights_only=True)
    ckpt["metadata"]["stylegan3"]["format_version"] = 99
    torch.save(ckpt, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="format 99 is newer"):
        load_stylegan3(tmp_path / "newer.pt")
    ckpt["metadata"]["stylegan3"]["format_version"] = 1
    del ckpt["g_ema"]["synthesis.input.freqs"]
    torch.save(ckpt, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"missing synthesis\.input\.freqs"):
        load_stylegan3(tmp_path / "partial.pt")
    with pytest.raises(TypeError, match="not plain data"):
        save_stylegan3(tmp_path / "bad.pt", g, {"tensor": torch.zeros(1)})

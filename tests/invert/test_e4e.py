"""invert/e4e.py: e4e's layout and numbers, its checkpoint format, its preprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import PIL.Image
import pytest
import torch

from invert.e4e import (
    E4E,
    Encoder4Editing,
    EncoderError,
    n_styles_for,
    preprocess,
    resize_for_encoder,
)
from invert.e4e_weights import load_e4e, random_e4e, save_e4e_checkpoint, seeded_state_dict
from invert.weights import UnknownWeightsError

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"  # e4e's layout, numbers


def _skeleton(stylegan_size: int) -> Encoder4Editing:
    with torch.device("meta"):  # the layout without allocating the weights
        return Encoder4Editing(50, "ir_se", stylegan_size)


@pytest.fixture(scope="module")
def small_e4e() -> E4E:
    """The smallest encoder (stylegan_size 8: 3 coarse styles + 1 middle), seeded."""
    return random_e4e(stylegan_size=8, seed=3)


@pytest.fixture(scope="module")
def small_file(small_e4e: E4E, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e4e") / "e4e_small.pt"
    decoder = {"style.1.weight": torch.randn(8, 8), "conv1.conv.weight": torch.randn(1, 4, 4, 3, 3)}
    save_e4e_checkpoint(small_e4e, path, decoder_state=decoder, opts={"lpips_lambda": 0.8})
    return path


def _zero_state(stylegan_size: int) -> dict[str, torch.Tensor]:
    """A complete encoder state dict whose float tensors all view one zero storage, so a
    file of it is ~10 MB (torch.save writes a shared storage once)."""
    layout = _skeleton(stylegan_size).state_dict()
    storage = torch.zeros(max(v.numel() for v in layout.values()))
    return {
        k: torch.tensor(0)
        if k.endswith("num_batches_tracked")
        else storage[: v.numel()].view(v.shape)
        for k, v in layout.items()
    }


def _write(path: Path, encoder_state: dict, **top) -> Path:
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in encoder_state.items()}, **top}, path)
    return path


# -- layout and numbers -------------------------------------------------------------------


def test_state_dict_matches_the_manifest_in_order():
    rows = [
        line.rstrip("\n").split("\t")
        for line in (REFERENCE / "e4e_state_dict_manifest.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    ours = [
        (key, "x".join(map(str, t.shape)) or "scalar")
        for key, t in _skeleton(1024).state_dict().items()
    ]
    assert ours == [(key, shape) for key, shape in rows]


def test_seeded_weights_reproduce_the_reference_codes():
    ref = torch.load(REFERENCE / "e4e_reference.pt", weights_only=True)
    assert ref["stylegan_size"] == 1024
    encoder = _skeleton(ref["stylegan_size"])
    state = seeded_state_dict(ref["keys_shapes"], ref["seed"], ref["prelu_keys"])
    encoder.load_state_dict(state, strict=True, assign=True)
    with torch.no_grad():
        codes = encoder.eval()(ref["x"])
    assert codes.shape == ref["codes"].shape == (1, 18, 512)
    assert (codes - ref["codes"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize(("size", "n"), [(8, 4), (16, 6), (32, 8), (64, 10), (256, 14), (1024, 18)])
def test_every_generator_size_gets_its_style_count(size, n):
    assert n_styles_for(size) == n == int(math.log2(size)) * 2 - 2
    encoder = _skeleton(size)
    with torch.device("meta"):  # shapes only: the coarse/middle/fine split at every size
        assert encoder(torch.empty(2, 3, 256, 256)).shape == (2, n, 512)


@pytest.mark.parametrize("size", [4, 100, 0])
def test_a_size_that_is_not_a_generator_size_is_refused(size):
    with pytest.raises(ValueError, match="stylegan_size must be a power of two"):
        n_styles_for(size)


def test_the_encoder_takes_only_256px_images():
    with pytest.raises(ValueError, match=r"\[N, 3, 256, 256\]"):
        _skeleton(8)(torch.empty(1, 3, 128, 128, device="meta"))


def test_random_e4e_encodes_a_small_generator_batch():
    e4e = random_e4e(stylegan_size=64)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    w_plus = e4e.encode(images)
    assert w_plus.shape == (2, 10, 512) and e4e.n_styles == 10
    assert torch.isfinite(w_plus).all() and not torch.equal(w_plus[0], w_plus[1])
    assert not w_plus.requires_grad and e4e.source == "random"
    assert not e4e.encoder.training
    assert not any(p.requires_grad for p in e4e.encoder.parameters())


# -- checkpoints --------------------------------------------------------------------------


def test_a_saved_checkpoint_loads_back_and_encodes_exactly(small_e4e, small_file):
    raw = torch.load(small_file, weights_only=True, map_location="cpu")
    assert {"decoder.style.1.weight", "encoder.latlayer1.bias"} <= raw["state_dict"].keys()
    assert raw["opts"] == {
        "encoder_type": "Encoder4Editing",
        "stylegan_size": 8,
        "lpips_lambda": 0.8,
    }

    loaded = load_e4e(small_file)
    assert loaded.source == str(small_file) and loaded.n_styles == 4
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = small_e4e.encoder(x) + small_e4e.latent_avg
    assert torch.equal(loaded.encode(x), expected)
    assert torch.equal(loaded.latent_avg, small_e4e.latent_avg)


def test_a_registered_name_loads_the_file_it_points_at(small_file, monkeypatch):
    monkeypatch.setenv("NADA_WEIGHTS_E4E_FFHQ", str(small_file))
    assert load_e4e("e4e-ffhq").source == "e4e-ffhq"
    with pytest.raises(UnknownWeightsError, match="e4e-ffhq"):
        load_e4e("e4e-ffqh")


def test_a_bare_encoder_with_a_single_latent_avg_loads(tmp_path):
    state = _zero_state(16)
    path = tmp_path / "bare.pt"
    torch.save({"encoder": state, "latent_avg": torch.arange(512.0)}, path)
    loaded = load_e4e(path)  # stylegan_size from the 6 style blocks
    assert loaded.encoder.stylegan_size == 16
    assert loaded.latent_avg.shape == (6, 512) and torch.equal(
        loaded.latent_avg[5], torch.arange(512.0)
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda sd, top: sd.pop("styles.0.linear.bias"), "missing styles.0.linear.bias"),
        (
            lambda sd, top: sd.__setitem__("body.0.res_layer.9.weight", torch.zeros(1)),
            "unexpected body.0.res_layer.9.weight",
        ),
        (
            lambda sd, top: sd.__setitem__("latlayer1.weight", torch.zeros(512, 128, 1, 1)),
            r"latlayer1.weight \[512, 128, 1, 1\] \(expected \[512, 256, 1, 1\]\)",
        ),
        (lambda sd, top: top.pop("latent_avg"), "has no latent_avg"),
        (
            lambda sd, top: top.__setitem__("latent_avg", torch.zeros(3, 512)),
            r"latent_avg must be \[4, 512\]",
        ),
        (
            lambda sd, top: top.__setitem__("opts", {"stylegan_size": 64}),
            "4 style blocks, but stylegan_size 64",
        ),
    ],
    ids=[
        "missing-key",
        "unexpected-key",
        "wrong-shape",
        "no-latent-avg",
        "bad-latent-avg",
        "wrong-size",
    ],
)
def test_a_damaged_checkpoint_names_the_file_and_the_fault(tmp_path, damage, message):
    state, top = _zero_state(8), {"latent_avg": torch.zeros(4, 512), "opts": {"stylegan_size": 8}}
    damage(state, top)
    path = _write(tmp_path / "damaged.pt", state, **top)
    with pytest.raises(EncoderError, match=message) as info:
        load_e4e(path)
    assert "damaged.pt" in str(info.value)


def test_a_file_that_is_not_an_encoder_is_refused_by_name(tmp_path):
    page = tmp_path / "page.pt"
    page.write_bytes(b"<!DOCTYPE html><html>quota exceeded</html>")
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    generator = tmp_path / "generator.pt"
    torch.save(
        {"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "latent_avg": torch.zeros(512)}, generator
    )
    for path, why in [
        (page, "HTML page"),
        (listing, "holds a list"),
        (generator, "no 'state_dict' with encoder"),
        (tmp_path / "absent.pt", "no such"),
    ]:
        with pytest.raises(EncoderError, match=why) as info:
            load_e4e(path)
        assert path.name in str(info.value)


def test_stylegan_size_argument_must_fit_the_file(tmp_path):
    path = _write(tmp_path / "e4e.pt", _zero_state(8), latent_avg=torch.zeros(512))
    assert load_e4e(path, stylegan_size=8).n_styles == 4
    with pytest.raises(EncoderError, match="stylegan_size 1024 .from the stylegan_size argument"):
        load_e4e(path, stylegan_size=1024)


# -- preprocessing ------------------------------------------------------------------------


def _photo(mode: str, size: tuple[int, int]) -> PIL.Image.Image:
    g = torch.Generator().manual_seed(7)
    channels = len(mode)
    noise = torch.randint(0, 256, (size[1], size[0], channels), generator=g, dtype=torch.uint8)
    return PIL.Image.frombytes(mode, size, bytes(noise.flatten().tolist()))


@pytest.mark.parametrize(
    ("mode", "size"), [("RGB", (300, 200)), ("RGBA", (256, 256)), ("L", (97, 131))]
)
def test_preprocess_is_e4e_s_torchvision_transform(mode, size):
    transforms = pytest.importorskip("torchvision.transforms")
    image = _photo(mode, size)
    e4e_transform = transforms.Compose(
        [
            transforms.Resize((256, 256)),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ]
    )
    expected = e4e_transform(image.convert("RGB")).unsqueeze(0)
    x = preprocess(image)
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    assert torch.equal(x, expected)


@pytest.mark.parametrize("size", [1024, 300, 128])
def test_tensors_are_resized_like_e4e_s_pil_resize(size):
    """encode() resizes tensors; antialiased bilinear stays within one 8-bit step of PIL."""
    g = torch.Generator().manual_seed(size)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=size)
    pixels = (smooth * 200 + torch.rand(1, 3, size, size, generator=g) * 55).to(torch.uint8)
    hwc = bytes(pixels[0].permute(1, 2, 0).flatten().tolist())
    x = resize_for_encoder(pixels.float() / 255 * 2 - 1)
    assert x.shape == (1, 3, 256, 256)
    expected = preprocess(PIL.Image.frombytes("RGB", (size, size), hwc))
    assert (x - expected).abs().max().item() <= 2 / 255 + 1e-6
    same = torch.zeros(2, 3, 256, 256)
    assert resize_for_encoder(same) is same
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        resize_for_encoder(torch.zeros(3, 256, 256))

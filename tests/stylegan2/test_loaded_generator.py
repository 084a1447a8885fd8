"""The one contract for every family: load_generator(.pkl | .pt | name) -> LoadedGenerator,
to_wplus(z, truncation) -> [N, num_ws, w_dim], render_wplus(ws) -> [N, 3, H, W]."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest
import torch

import stylegan2
from stylegan2 import registry
from stylegan2.checkpoint import CheckpointError, load_untrusted, random_generator, save_generator
from stylegan2.registry import GeneratorInfo

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"  # README.md says what
TOL = 1e-4


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.GENERATORS, "_entries", dict(registry.GENERATORS._entries))


def check_every_field(g: stylegan2.LoadedGenerator, out: dict) -> None:
    """Every output field of a fixture through the contract only, within TOL."""
    with torch.no_grad():
        ws = g.to_wplus(out["z"])
        assert ws.shape == (3, g.num_ws, g.w_dim) == out["ws_z"].shape
        k = out["mix_index"]
        mix = torch.cat([ws[:, :k], g.to_wplus(out["z2"])[:, k:]], 1)
        got = {
            "ws_z": ws,
            "img_z": g.render_wplus(ws),
            "img_z_trunc07": g.render_wplus(g.to_wplus(out["z"], truncation=0.7)),
            "ws_mix": mix,
            "img_ws_mix": g.render_wplus(out["ws_mix"]),
        }
    errors = {name: (value - out[name]).abs().max().item() for name, value in got.items()}
    assert max(errors.values()) < TOL, errors
    assert got["img_z"].shape == (3, 3, g.resolution, g.resolution)


@pytest.mark.parametrize("name", ["ada_sg2_64.pkl", "ada_sg2_64_tf.pkl"])
def test_stylegan2_ada_pickles_load_through_the_contract(name: str, tmp_path: Path) -> None:
    g = stylegan2.load_generator(str(NVIDIA / name))
    assert (g.family, g.resolution, g.num_ws, g.w_dim, g.z_dim) == ("stylegan2", 64, 10, 128, 128)
    assert g.module is g.generator and not g.module.training
    check_every_field(g, torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True))
    assert g.identity["format"] == "nvidia-" + ("tensorflow" if "_tf" in name else "pytorch")
    assert g.identity["network"] == ("Gs" if "_tf" in name else "G_ema")
    # identity and metadata are plain data: what an adapted checkpoint records of its base
    path = tmp_path / "adapted.pt"
    save_generator(path, g.generator, g.latent_avg, {"base": g.identity, **g.metadata})
    again = stylegan2.load_generator(path)
    assert again.metadata["base"] == g.identity
    check_every_field(again, torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True))


def test_a_pickle_is_recognised_by_its_content_not_its_name(tmp_path: Path) -> None:
    renamed = tmp_path / "weights.pt"
    shutil.copy(NVIDIA / "ada_sg2_64.pkl", renamed)
    g = stylegan2.load_generator(renamed)
    assert g.identity["format"] == "nvidia-pytorch" and g.identity["path"] == str(renamed)
    assert load_untrusted(renamed).identity["size"] == 64  # the upload check reads it too


def test_rosinality_files_speak_the_same_contract(tmp_path: Path) -> None:
    base = random_generator(8, style_dim=32, n_mlp=2, channel_multiplier=1)
    save_generator(tmp_path / "g.pt", base.generator, base.latent_avg, {})
    for g in (stylegan2.load_generator(tmp_path / "g.pt"), stylegan2.load_generator("random-8")):
        assert (g.family, g.resolution, g.num_ws) == ("stylegan2", 8, 4)
        z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ws = g.to_wplus(z, truncation=0.5)
            assert ws.shape == (2, 4, g.w_dim)
            w = g.generator.style(z)
            # lerp and the written-out formula round differently near zero
            torch.testing.assert_close(ws[:, 2], g.latent_avg + 0.5 * (w - g.latent_avg))
            image = g.render_wplus(ws)
            expected, _ = g.generator([ws], input_is_latent=True, randomize_noise=False)
        assert torch.equal(image, expected)  # the fixed noise: the same image every time
        assert image.shape == (2, 3, 8, 8)
        with pytest.raises(ValueError, match=r"ws must be \[N, 4, "):
            g.render_wplus(ws[:, :3])
        with pytest.raises(ValueError, match=r"z must be \[N, "):
            g.to_wplus(ws)


def test_a_registry_name_can_resolve_to_a_pickle(file_server: tuple[str, Path]) -> None:
    base, root = file_server
    shutil.copy(NVIDIA / "ada_sg2_64.pkl", root / "ada.pkl")
    info = dict(domain="test", description="test", url=f"{base}/ada.pkl", sha256=None)
    registry.add_generator(GeneratorInfo(name="ada-64", size=64, filename="ada-64.pkl", **info))
    g = stylegan2.load_generator("ada-64")
    assert g.identity["name"] == "ada-64" and g.family == "stylegan2"
    registry.add_generator(GeneratorInfo(name="ada-128", size=128, filename="ada.pkl", **info))
    with pytest.raises(CheckpointError, match="ada-128 should be a 128 px generator"):
        stylegan2.load_generator("ada-128")


def test_hostile_and_broken_pickles_are_refused_through_load_generator(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"  # GLOBAL posix.system, called with "touch <marker>"
    command = f"touch {marker}".encode()
    evil.write_bytes(
        b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    )
    with pytest.raises(CheckpointError, match=r"refusing to load .*\(posix\.system\)"):
        stylegan2.load_generator(evil)
    assert not marker.exists()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes((NVIDIA / "ada_sg2_64.pkl").read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="nor a readable NVIDIA pickle .truncated"):
        stylegan2.load_generator(cut)


def _stylegan3_builder() -> object | None:
    try:
        return getattr(importlib.import_module("stylegan2.stylegan3"), "from_nvidia", None)
    except ImportError:
        return None


@pytest.mark.skipif(
    _stylegan3_builder() is None, reason="stylegan2.stylegan3.from_nvidia is not there yet"
)
@pytest.mark.parametrize("config", ["t", "r"])
def test_stylegan3_pickles_load_through_the_contract(config: str) -> None:
    g = stylegan2.load_generator(NVIDIA / f"sg3_{config}_64.pkl")
    out = torch.load(NVIDIA / f"sg3_{config}_64_outputs.pt", weights_only=True)
    assert (g.family, g.resolution, g.num_ws, g.w_dim, g.z_dim) == ("stylegan3", 64, 16, 64, 64)
    assert not g.module.training
    check_every_field(g, out)


@pytest.mark.skipif(
    _stylegan3_builder() is None, reason="stylegan2.stylegan3.from_nvidia is not there yet"
)
def test_a_stylegan3_generator_saves_and_loads_back_through_the_contract(tmp_path: Path) -> None:
    """save_generator writes StyleGAN3 in its own layout; load_generator (and the upload
    check, load_untrusted) read it back as the same generator."""
    g = stylegan2.load_generator(NVIDIA / "sg3_t_64.pkl")
    path = tmp_path / "adapted.pt"
    save_generator(path, g.generator, g.latent_avg, {"base": g.identity})
    for again in (stylegan2.load_generator(path), load_untrusted(path)):
        assert again.family == "stylegan3" and again.metadata["base"] == g.identity
        assert again.identity["size"] == 64 and again.identity["family"] == "stylegan3"
        check_every_field(again, torch.load(NVIDIA / "sg3_t_64_outputs.pt", weights_only=True))

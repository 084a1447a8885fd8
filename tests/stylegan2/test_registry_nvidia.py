"""Registry entries that are NVIDIA pickles: downloaded (from a mirror on loopback, through
NADA_GENERATOR_<NAME>), trusted on first use, converted once into the cache, and the same
generator as NVIDIA's (the fixtures' outputs)."""

from __future__ import annotations

import hashlib
import http.server
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import stylegan2
from stylegan2 import converted, registry
from stylegan2.checkpoint import save_generator
from stylegan2.download import ChecksumError, recorded_sha256
from stylegan2.registry import GeneratorInfo

from .conftest import serve_directory
from .test_loaded_generator import NVIDIA, check_every_field
from .test_registry import isolated  # noqa: F401 (autouse: a private cache and registry)

BOX = (0, 8, 64, 56)  # a letterbox, as lsun-car-512's


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(base URL, request paths) of an http.server over a copy of tests/data/nvidia/."""
    root = tmp_path / "mirror"
    shutil.copytree(NVIDIA, root)
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            seen.append(self.path)

    with serve_directory(root, Handler) as url:
        yield url, seen


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names converted (each call of the one conversion)."""
    calls: list[str] = []
    convert = converted._convert

    def counting(info: GeneratorInfo, *args: object) -> None:
        calls.append(info.name)
        convert(info, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(converted, "_convert", counting)
    return calls


def register(name: str, family: str, **kw: object) -> None:
    registry.add_generator(
        GeneratorInfo(
            name=name,
            size=64,
            domain="test",
            description="a fixture written by NVIDIA's code",
            filename=f"{name}.pkl",
            url="https://nvlabs-fi-cdn.invalid/never-used.pkl",  # the override replaces it
            family=family,
            format="nvidia-pkl",
            **kw,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("pickle", "outputs", "family"),
    [("ada_sg2_64.pkl", "ada_sg2_64_outputs.pt", "stylegan2"),
     ("sg3_t_64.pkl", "sg3_t_64_outputs.pt", "stylegan3")],
)  # fmt: skip
def test_a_pickle_entry_downloads_converts_once_and_is_nvidias_generator(
    pickle: str,
    outputs: str,
    family: str,
    mirror: tuple[str, list[str]],
    conversions: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    base, seen = mirror
    register("fixture-64", family, content_box=BOX)
    monkeypatch.setenv("NADA_GENERATOR_FIXTURE_64", f"{base}/{pickle}")
    out = torch.load(NVIDIA / outputs, weights_only=True)

    g = stylegan2.load_generator("fixture-64")
    pkl = registry.cache_path("fixture-64")
    digest = hashlib.sha256((NVIDIA / pickle).read_bytes()).hexdigest()
    assert seen == [f"/{pickle}"] and recorded_sha256(pkl) == digest  # trusted on first use
    target = registry.converted_path("fixture-64")
    assert target.is_file() and target.parent == pkl.parent / "converted"
    assert pkl.is_file()  # kept: what the record verifies, what a re-conversion reads
    assert (g.family, g.resolution, g.identity["name"]) == (family, 64, "fixture-64")
    assert g.identity["path"] == str(target.resolve())
    assert g.identity["converted_from"]["sha256"] == digest
    assert g.metadata["converted_from"]["sha256"] == digest
    assert g.content_box == BOX
    check_every_field(g, out)

    mtime = target.stat().st_mtime_ns
    again = stylegan2.load_generator("fixture-64")
    assert conversions == ["fixture-64"] and target.stat().st_mtime_ns == mtime
    assert seen == [f"/{pickle}"]  # the cache, not the mirror
    check_every_field(again, out)

    # The box survives into an adapted checkpoint's base identity.
    adapted = tmp_path / "adapted.pt"
    save_generator(adapted, again.generator, again.latent_avg, {"base": again.identity})
    assert stylegan2.load_generator(adapted).content_box == BOX

    # A changed pickle in the cache is caught by the record of its first use.
    pkl.write_bytes(pkl.read_bytes()[:-1] + b"!")
    with pytest.raises(ChecksumError, match="recorded in .* on first use"):
        stylegan2.load_generator("fixture-64")
    assert conversions == ["fixture-64"]


def test_another_pickle_under_the_name_is_converted_again(
    mirror: tuple[str, list[str]], conversions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nada models add NAME other.pkl --force` (install): the converted file's record names
    the old pickle, so the next load converts the new one (here the same generator as a
    TensorFlow pickle)."""
    base, _ = mirror
    register("fixture-64", "stylegan2")
    monkeypatch.setenv("NADA_GENERATOR_FIXTURE_64", f"{base}/ada_sg2_64.pkl")
    first = stylegan2.load_generator("fixture-64")
    assert first.content_box is None
    registry.install_file("fixture-64", NVIDIA / "ada_sg2_64_tf.pkl", overwrite=True)
    g = stylegan2.load_generator("fixture-64")
    assert conversions == ["fixture-64", "fixture-64"]
    assert g.identity["converted_from"]["format"] == "nvidia-tensorflow"
    assert g.identity["converted_from"]["network"] == "Gs"
    check_every_field(g, torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True))
    # A damaged conversion (ours, not a download) is written again, not refused.
    target = registry.converted_path("fixture-64")
    target.write_bytes(target.read_bytes()[:1000])
    g = stylegan2.load_generator("fixture-64")
    assert conversions == ["fixture-64"] * 3
    check_every_field(g, torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True))


def test_a_pt_under_a_pickle_entry_loads_as_it_is(tmp_path: Path, conversions: list[str]) -> None:
    """A rosinality .pt added under a pickle entry's name (what users converted by hand
    before the direct downloads) is recognised by its content and not converted."""
    register("fixture-64", "stylegan2", content_box=BOX)
    nvidia = stylegan2.load_generator(NVIDIA / "ada_sg2_64.pkl")
    mine = tmp_path / "mine.pt"
    save_generator(mine, nvidia.generator, nvidia.latent_avg, {})
    registry.install_file("fixture-64", mine)
    g = stylegan2.load_generator("fixture-64")
    assert conversions == [] and g.content_box == BOX
    assert not registry.converted_path("fixture-64").exists()
    check_every_field(g, torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True))

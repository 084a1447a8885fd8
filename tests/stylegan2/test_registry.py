"""The registry of base generators and its cache (no torch, no outside network)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import http.server
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stylegan2 import registry
from stylegan2.download import ChecksumError, DownloadError, recorded_sha256
from stylegan2.registry import (
    GeneratorInfo,
    ManualDownloadError,
    UnknownGeneratorError,
    add_generator,
    cache_dir,
    cached_path,
    get_generator_info,
    install_file,
    list_generators,
    parse_random_name,
    resolve,
)

from .conftest import serve_directory

PAYLOAD = b"not really a generator, but the registry does not care\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private cache directory and a private copy of the registry for each test."""
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.GENERATORS, "_entries", dict(registry.GENERATORS._entries))
    return tmp_path / "cache"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(base URL, request paths) of a plain file server over tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "tiny.pt").write_bytes(PAYLOAD)
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            seen.append(self.path)

    with serve_directory(root, Handler) as url:
        yield url, seen


def tiny(url: str | None, sha256: str | None = None, **kw: object) -> GeneratorInfo:
    fields = dict(
        name="tiny-8",
        size=8,
        domain="test patterns",
        description="a test entry",
        filename="tiny-8.pt",
        url=url,
        sha256=sha256,
        manual=None if url else "ask the test suite",
    )
    fields.update(kw)
    return GeneratorInfo(**fields)  # type: ignore[arg-type]


def test_builtin_entries() -> None:
    infos = {g.name: g for g in list_generators()}
    assert list(infos)[0] == "ffhq-1024"
    ffhq = infos["ffhq-1024"]
    assert ffhq.size == 1024 and ffhq.channel_multiplier == 2 and ffhq.style_dim == 512
    assert ffhq.url == (
        "https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/resolve/main/"
        "stylegan2-ffhq-config-f.pt"
    )
    assert ffhq.format == "rosinality-pt"
    assert (infos["lsun-church-256"].size, infos["afhq-dog-512"].size) == (256, 512)
    assert len({g.filename for g in infos.values()}) == len(infos)
    assert len({g.converted_filename for g in infos.values()}) == len(infos)


# The published files (/work/shared/reference/nvidia/README.md), one entry each: name ->
# (family, size, URL). cifar10 is conditional and left out (docs/models.md).
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/"
_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
PUBLISHED = {
    "afhq-dog-512": ("stylegan2", 512, _ADA + "afhqdog.pkl"),
    "afhq-cat-512": ("stylegan2", 512, _ADA + "afhqcat.pkl"),
    "afhq-wild-512": ("stylegan2", 512, _ADA + "afhqwild.pkl"),
    "ffhq-ada-1024": ("stylegan2", 1024, _ADA + "ffhq.pkl"),
    "metfaces-1024": ("stylegan2", 1024, _ADA + "metfaces.pkl"),
    "brecahad-512": ("stylegan2", 512, _ADA + "brecahad.pkl"),
    "lsun-church-256": ("stylegan2", 256, _TF + "stylegan2-church-config-f.pkl"),
    "lsun-car-512": ("stylegan2", 512, _TF + "stylegan2-car-config-f.pkl"),
    "lsun-cat-256": ("stylegan2", 256, _TF + "stylegan2-cat-config-f.pkl"),
    "lsun-horse-256": ("stylegan2", 256, _TF + "stylegan2-horse-config-f.pkl"),
    **{
        name: ("stylegan2", size, f"{_NGC}stylegan2/versions/1/files/stylegan2-{file}.pkl")
        for name, size, file in (
            ("ffhq-512", 512, "ffhq-512x512"),
            ("ffhq-256", 256, "ffhq-256x256"),
            ("ffhqu-1024", 1024, "ffhqu-1024x1024"),
            ("ffhqu-256", 256, "ffhqu-256x256"),
            ("metfacesu-1024", 1024, "metfacesu-1024x1024"),
            ("afhqv2-512", 512, "afhqv2-512x512"),
            ("celebahq-256", 256, "celebahq-256x256"),
            ("lsun-dog-256", 256, "lsundog-256x256"),
        )
    },
    **{
        f"sg3-{c}-{data}-{size}": (
            "stylegan3",
            size,
            f"{_NGC}stylegan3/versions/1/files/stylegan3-{c}-{data}-{size}x{size}.pkl",
        )
        for c in "tr"
        for data, size in (
            ("ffhq", 1024),
            ("ffhqu", 1024),
            ("ffhqu", 256),
            ("metfaces", 1024),
            ("metfacesu", 1024),
            ("afhqv2", 512),
        )
    },
}


def test_every_published_nvidia_file_is_a_direct_download() -> None:
    infos = {g.name: g for g in list_generators()}
    assert set(infos) == {"ffhq-1024", *PUBLISHED}
    for name, (family, size, url) in PUBLISHED.items():
        info = infos[name]
        assert (info.family, info.size, info.url) == (family, size, url), name
        assert info.format == "nvidia-pkl" and info.manual is None, name
        assert info.filename == url.rsplit("/", 1)[1] or info.filename == (
            "stylegan2-ada-" + url.rsplit("/", 1)[1]
        ), name
    for info in infos.values():
        assert info.sha256 is None  # none is published: trust on first use
        assert info.license_id == "nvidia-nc" and "non-commercial" in info.license
        assert info.domain and info.description and info.source
        assert info.style_dim == 512
        assert info.content_box is None or info.name == "lsun-car-512"
    assert infos["lsun-car-512"].content_box == (0, 64, 512, 448)
    assert "cifar10" not in " ".join(g.url or "" for g in infos.values())


def _manifest_weights() -> dict[str, int]:
    """Parameters and buffers of G in each full-size configuration of the manifests."""
    totals: dict[str, int] = {}
    for name in ("nvidia_stylegan2_ada_manifest.tsv", "nvidia_stylegan3_manifest.tsv"):
        with open(Path(__file__).parents[1] / "data" / "nvidia" / name) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                shape = [] if row["shape"] == "scalar" else row["shape"].split("x")
                totals[row["config"]] = totals.get(row["config"], 0) + math.prod(map(int, shape))
    return totals


def discriminator_weights(resolution: int, channel_base: int = 32768) -> int:
    """Parameters of NVIDIA's resnet Discriminator (stylegan2-ada-pytorch
    training/networks.py, channel_max 512, unconditional): the D of every published pickle
    (StyleGAN3's files too; its config R doubles G's channels only)."""
    blocks = [2**i for i in range(int(math.log2(resolution)), 2, -1)]
    channels = {r: min(channel_base // r, 512) for r in [*blocks, 4]}
    n = 0
    for r in blocks:
        tmp, out = channels[r], channels[r // 2]
        n += 4 * tmp if r == resolution else 0  # fromrgb: 1x1 conv from 3 channels + bias
        n += tmp * tmp * 9 + tmp + tmp * out * 9 + out + tmp * out  # conv0, conv1, skip
    c = channels[4]  # the epilogue: mbstd (+1 channel), conv, fc, out
    return n + (c + 1) * c * 9 + c + c * 16 * c + c + c + 1


def test_download_sizes_are_the_two_generators_and_the_discriminator() -> None:
    """size_mb = (2 G + D) x 4 bytes, to 10 MB, where the manifests have the configuration
    (the registry's comment says how the others were estimated)."""
    totals = _manifest_weights()
    generators = {
        ("stylegan2", 1024): "stylegan2-ada ffhq 1024 (paper1024, cbase 32768, map 8)",
        ("stylegan2", 512): "stylegan2-ada afhq 512 (paper512, cbase 32768, map 8)",
        ("t", 1024): "stylegan3-t 1024 (ffhq, metfaces)",
        ("t", 512): "stylegan3-t 512 (afhqv2)",
        ("r", 1024): "stylegan3-r 1024 (ffhq, metfaces)",
        ("r", 512): "stylegan3-r 512 (afhqv2)",
    }
    checked = 0
    for info in list_generators():
        assert info.size_mb is None or 200 <= info.size_mb <= 400, info.name
        config = info.family if info.family == "stylegan2" else info.name.split("-")[1]
        key = generators.get((config, info.size))
        if key is None or info.format != "nvidia-pkl":
            continue
        estimate = (2 * totals[key] + discriminator_weights(info.size)) * 4 / 1e6
        assert info.size_mb == round(estimate, -1), (info.name, estimate)
        checked += 1
    assert checked == 21


def test_entries_are_validated() -> None:
    for bad, message in (
        ({"family": "stylegan4"}, "family must be one of"),
        ({"format": "onnx"}, "format must be one of"),
        ({"content_box": (0, 2, 8, 9)}, "content_box must be"),
        ({"content_box": (0, 2, 8)}, "content_box must be"),
        ({"content_box": (4, 2, 4, 6)}, "content_box must be"),
    ):
        with pytest.raises(ValueError, match=message):
            tiny("http://x/y", **bad)
    assert tiny("http://x/y", content_box=[0, 2, 8, 6]).content_box == (0, 2, 8, 6)


def test_get_returns_a_copy_and_unknown_names_list_the_known() -> None:
    info = get_generator_info("ffhq-1024")
    assert info == registry.GENERATORS._entries["ffhq-1024"]
    assert info is not registry.GENERATORS._entries["ffhq-1024"]
    with pytest.raises(UnknownGeneratorError) as err:
        get_generator_info("ffqh-1024")
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith("unknown generator 'ffqh-1024'; known: ffhq-1024, ")
    assert "lsun-church-256" in str(err.value)


def test_add_generator_validates_and_refuses_duplicates() -> None:
    add_generator(tiny("http://127.0.0.1:9/tiny.pt"))
    assert get_generator_info("tiny-8").size == 8
    with pytest.raises(ValueError, match="already registered"):
        add_generator(tiny("http://127.0.0.1:9/tiny.pt"))
    add_generator(tiny("http://127.0.0.1:9/other.pt"), overwrite=True)
    assert get_generator_info("tiny-8").url.endswith("other.pt")
    with pytest.raises(ValueError, match="already used by ffhq-1024"):
        add_generator(tiny(None, name="clash-8", filename="stylegan2-ffhq-config-f.pt"))
    with pytest.raises(ValueError, match="sha256 must be 64"):
        tiny("http://x/y", sha256="abc")
    with pytest.raises(ValueError, match="power of two"):
        tiny("http://x/y", size=100)
    with pytest.raises(ValueError, match="must not start with 'random-'"):
        tiny("http://x/y", name="random-8")
    with pytest.raises(ValueError, match="needs a `manual` note"):
        tiny(None, manual=None)


def test_random_names() -> None:
    assert parse_random_name("random-256") == 256
    assert parse_random_name("ffhq-1024") is None
    with pytest.raises(ValueError, match=r"power of two in 8\.\.1024 \(got 'random-33'\)"):
        parse_random_name("random-33")
    for other in ("random-0032", "random-\uff13\uff12"):  # one name per generator
        with pytest.raises(ValueError, match=r"write the random generator's name as 'random-32'"):
            parse_random_name(other)


def test_cache_dir_env_and_default(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    assert cache_dir() == isolated
    assert registry.cache_path("ffhq-1024") == isolated / "generators" / (
        "stylegan2-ffhq-config-f.pt"
    )
    monkeypatch.delenv("NADA_CACHE_DIR")
    assert cache_dir().name == "stylegan-nada"


def test_resolve_downloads_once_then_verifies_on_every_hit(
    served: tuple[str, list[str]],
) -> None:
    base, seen = served
    add_generator(tiny(f"{base}/tiny.pt", sha256=PAYLOAD_SHA))
    assert cached_path("tiny-8") is None
    path = resolve("tiny-8")
    assert path.read_bytes() == PAYLOAD and cached_path("tiny-8") == path
    assert resolve("tiny-8") == path
    assert seen == ["/tiny.pt"]  # the hit did not go to the network
    path.write_bytes(PAYLOAD + b"tampered")
    with pytest.raises(ChecksumError, match="published sha256"):
        resolve("tiny-8")


def test_without_a_published_checksum_the_first_download_is_recorded(
    served: tuple[str, list[str]],
) -> None:
    base, _ = served
    add_generator(tiny(f"{base}/tiny.pt"))
    path = resolve("tiny-8")
    sidecar = path.with_name("tiny-8.pt.sha256")
    assert sidecar.read_text().split()[0] == PAYLOAD_SHA
    path.write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="recorded in tiny-8.pt.sha256 on first use"):
        resolve("tiny-8")


def test_offline_resolve_says_where_to_put_the_file() -> None:
    add_generator(tiny("http://127.0.0.1:9/tiny.pt"))  # port 9 (discard): refused
    with pytest.raises(DownloadError) as err:
        resolve("tiny-8")
    message = str(err.value)
    assert "could not download tiny-8 from http://127.0.0.1:9/tiny.pt" in message
    assert str(registry.cache_path("tiny-8")) in message and "--generator PATH" in message


def test_manual_entries_explain_how_to_get_the_file(isolated: Path, tmp_path: Path) -> None:
    add_generator(tiny(None, manual="Ask for it, then `nada models add tiny-8 PATH`."))
    with pytest.raises(ManualDownloadError) as err:
        resolve("tiny-8")
    message = str(err.value)
    assert "nada models add tiny-8 PATH" in message
    assert str(isolated / "generators" / "tiny-8.pt") in message
    # Copied in by hand: trusted on first use, then verified.
    target = registry.cache_path("tiny-8")
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert resolve("tiny-8") == target
    assert recorded_sha256(target) == PAYLOAD_SHA
    assert registry.GENERATORS.status("tiny-8").availability == "cached"


def test_install_file(tmp_path: Path) -> None:
    source = tmp_path / "mine.pt"
    source.write_bytes(PAYLOAD)
    path = install_file("lsun-church-256", source)
    assert path.read_bytes() == PAYLOAD and cached_path("lsun-church-256") == path
    assert registry.verify_cached("lsun-church-256") == PAYLOAD_SHA
    assert install_file("lsun-church-256", source) == path  # same bytes: fine
    other = tmp_path / "other.pt"
    other.write_bytes(b"other")
    with pytest.raises(FileExistsError, match="--force"):
        install_file("lsun-church-256", other)
    install_file("lsun-church-256", other, overwrite=True)
    assert registry.verify_cached("lsun-church-256") == hashlib.sha256(b"other").hexdigest()
    add_generator(tiny(None, sha256=PAYLOAD_SHA))
    with pytest.raises(ChecksumError, match="it is not that generator"):
        install_file("tiny-8", other)


def test_importing_the_registry_does_not_import_torch() -> None:
    code = (
        "import sys, stylegan2.registry as r; r.list_generators(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_infos_are_frozen() -> None:
    info = get_generator_info("ffhq-1024")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 512  # type: ignore[misc]

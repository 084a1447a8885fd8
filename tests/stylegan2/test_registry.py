"""The registry of base generators and its cache (no torch, no outside network)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
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
    assert {"afhq-dog-512", "afhq-cat-512", "lsun-church-256", "lsun-car-512"} <= set(infos)
    ffhq = infos["ffhq-1024"]
    assert ffhq.size == 1024 and ffhq.channel_multiplier == 2 and ffhq.style_dim == 512
    assert ffhq.url == (
        "https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/resolve/main/"
        "stylegan2-ffhq-config-f.pt"
    )
    assert (infos["lsun-church-256"].size, infos["afhq-dog-512"].size) == (256, 512)
    for info in infos.values():
        assert info.url or f"nada models add {info.name} PATH" in (info.manual or "")
        assert info.source
    assert len({g.filename for g in infos.values()}) == len(infos)


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
    with pytest.raises(ManualDownloadError) as err:
        resolve("afhq-dog-512")
    message = str(err.value)
    assert "nada models add afhq-dog-512 PATH" in message
    assert str(isolated / "generators" / "stylegan2-afhqdog-512.pt") in message
    # Copied in by hand: trusted on first use, then verified.
    target = registry.cache_path("afhq-dog-512")
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert resolve("afhq-dog-512") == target
    assert recorded_sha256(target) == PAYLOAD_SHA


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

"""One registry of model files (stylegan2/model_files.py): the base generators and the
auxiliary weights follow the same rules, checked here on both tables with the same test.

Pass criteria, for each kind: the override variable `NADA_<GENERATOR|WEIGHTS>_<NAME>` names
a local file that is used as is (checked against a published sha256, never copied or
written beside) or a mirror URL that is downloaded into the cache; re-installing the same
bytes is a no-op, other bytes are refused without `overwrite`; a name is registered once;
the listing says what is cached, what is here and what can be downloaded."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invert import weights
from invert.weights import WeightFile
from stylegan2 import registry
from stylegan2.download import ChecksumError, DownloadError, recorded_sha256
from stylegan2.model_files import (
    ManualDownloadError,
    MissingOverrideError,
    ModelFile,
    ModelTable,
    UnknownModelFileError,
)
from stylegan2.registry import GeneratorInfo
from stylegan2.registry import ManualDownloadError as RegistryManualDownloadError

from .conftest import QuietHandler, serve_directory

PAYLOAD = b"a model file, as far as the registry can tell\n" * 50
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
OFFLINE = "http://127.0.0.1:9/nothing-listens-here.bin"  # port 9 (discard): refused

TABLES = {"generator": registry.GENERATORS, "auxiliary": weights.WEIGHTS}


def scratch(table: ModelTable[Any], **fields: Any) -> ModelFile:
    """A test entry of the table's own entry type."""
    if table.kind == "generator":
        return GeneratorInfo(
            **{"name": "scratch-8", "filename": "scratch-8.bin", "description": "a test entry"}
            | {"size": 8, "domain": "test patterns"}
            | fields
        )
    return WeightFile(
        **{"name": "scratch-8", "filename": "scratch-8.bin", "description": "a test entry"} | fields
    )


@pytest.fixture(params=sorted(TABLES), ids=str)
def table(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[ModelTable[Any]]:
    """Each table with a private copy of its entries and a private cache."""
    chosen = TABLES[request.param]
    monkeypatch.setattr(chosen, "_entries", dict(chosen._entries))
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    for name in chosen.names():
        monkeypatch.delenv(chosen.env_var(name), raising=False)
    monkeypatch.delenv(chosen.env_var("scratch-8"), raising=False)
    yield chosen


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    """The base URL of a file server holding PAYLOAD as scratch-8.bin."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "scratch-8.bin").write_bytes(PAYLOAD)
    with serve_directory(root, QuietHandler) as url:
        yield url


def test_the_override_variables_follow_one_rule() -> None:
    assert registry.env_var("ffhq-1024") == "NADA_GENERATOR_FFHQ_1024"
    assert weights.env_var("e4e-ffhq") == "NADA_WEIGHTS_E4E_FFHQ"
    assert registry.GENERATORS.env_var("a.b-c") == "NADA_GENERATOR_A_B_C"
    assert weights.env_var("vgg16-torchvision") == "NADA_WEIGHTS_VGG16_TORCHVISION"


def test_a_local_override_is_used_as_is(
    table: ModelTable[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.add(scratch(table, url=OFFLINE))
    local = tmp_path / "elsewhere" / "my-copy.bin"
    local.parent.mkdir()
    local.write_bytes(PAYLOAD)
    variable = table.env_var("scratch-8")
    monkeypatch.setenv(variable, str(local))
    assert table.resolve("scratch-8") == local  # no download was tried (the URL is dead)
    assert table.local_path("scratch-8") == local
    assert sorted(p.name for p in local.parent.iterdir()) == ["my-copy.bin"]  # nothing beside
    assert not table.cache_path("scratch-8").exists()
    status = table.status("scratch-8")
    assert (status.here, status.cached, status.override) == (True, False, str(local))

    # A published sha256 is checked on the override too.
    table.add(scratch(table, url=OFFLINE, sha256="0" * 64), overwrite=True)
    with pytest.raises(ChecksumError, match=variable):
        table.resolve("scratch-8")

    monkeypatch.setenv(variable, str(tmp_path / "missing.bin"))
    with pytest.raises(MissingOverrideError, match=variable) as err:
        table.resolve("scratch-8")
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, DownloadError)
    assert table.status("scratch-8").here is False


def test_a_url_override_is_a_mirror_downloaded_into_the_cache(
    table: ModelTable[Any], mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.add(scratch(table, url=OFFLINE))
    assert table.status("scratch-8").downloadable
    monkeypatch.setenv(table.env_var("scratch-8"), f"{mirror}/scratch-8.bin")
    path = table.resolve("scratch-8", progress=False)
    assert path == table.cache_path("scratch-8") and path.read_bytes() == PAYLOAD
    assert recorded_sha256(path) == PAYLOAD_SHA  # no published hash: trusted on first use
    assert table.local_path("scratch-8") == path
    status = table.status("scratch-8")
    assert (status.cached, status.here, status.path) == (True, True, path)

    # A manual entry (no URL of its own) downloads from the mirror just the same.
    table.add(scratch(table, name="manual-8", filename="m.bin", manual="ask the tests"))
    assert not table.status("manual-8").downloadable
    monkeypatch.setenv(table.env_var("manual-8"), f"{mirror}/scratch-8.bin")
    assert table.status("manual-8").downloadable
    assert table.resolve("manual-8", progress=False).read_bytes() == PAYLOAD


def test_offline_and_manual_entries_say_where_a_copy_goes(table: ModelTable[Any]) -> None:
    table.add(scratch(table, url=OFFLINE))
    with pytest.raises(DownloadError) as err:
        table.resolve("scratch-8", progress=False)
    message = str(err.value)
    assert f"could not download scratch-8 from {OFFLINE}" in message
    assert str(table.cache_path("scratch-8")) in message
    assert table.env_var("scratch-8") in message
    with pytest.raises(DownloadError, match="downloads are off") as err:
        table.resolve("scratch-8", download_missing=False)
    assert table.env_var("scratch-8") in str(err.value)

    table.add(scratch(table, name="manual-8", filename="m.bin", manual="Ask the tests."))
    with pytest.raises(ManualDownloadError) as manual:
        table.resolve("manual-8")
    assert "Ask the tests." in str(manual.value)
    assert str(table.cache_path("manual-8")) in str(manual.value)
    assert table.env_var("manual-8") in str(manual.value)
    assert RegistryManualDownloadError is ManualDownloadError


def test_reinstalling_follows_one_rule(table: ModelTable[Any], tmp_path: Path) -> None:
    table.add(scratch(table, url=OFFLINE))
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    path = table.install("scratch-8", source)
    assert path.read_bytes() == PAYLOAD and recorded_sha256(path) == PAYLOAD_SHA
    before = os.stat(path)

    # The same bytes again (another copy of them): nothing is written.
    again = tmp_path / "again.bin"
    again.write_bytes(PAYLOAD)
    assert table.install("scratch-8", again) == path
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    # Other bytes: refused without overwrite, replaced with it.
    other = tmp_path / "other.bin"
    other.write_bytes(b"other bytes")
    with pytest.raises(FileExistsError, match="--force"):
        table.install("scratch-8", other)
    assert path.read_bytes() == PAYLOAD
    table.install("scratch-8", other, overwrite=True)
    assert path.read_bytes() == b"other bytes"
    assert table.verify_cached("scratch-8") == hashlib.sha256(b"other bytes").hexdigest()

    # A published sha256 decides what may be installed at all.
    table.add(scratch(table, url=OFFLINE, sha256=PAYLOAD_SHA), overwrite=True)
    with pytest.raises(ChecksumError, match="it is not that"):
        table.install("scratch-8", other, overwrite=True)
    with pytest.raises(FileNotFoundError, match="no such file"):
        table.install("scratch-8", tmp_path / "nothing.bin")


def test_registering_follows_one_rule(table: ModelTable[Any]) -> None:
    entry = scratch(table, url=OFFLINE)
    table.add(entry)
    with pytest.raises(ValueError, match="already registered"):
        table.add(entry)  # identical or not: a name is registered once
    table.add(scratch(table, url=OFFLINE, description="changed"), overwrite=True)
    assert table.get("scratch-8").description == "changed"
    taken = table.get(table.names()[0]).filename
    with pytest.raises(ValueError, match=f"already used by {table.names()[0]}"):
        table.add(scratch(table, name="clash-8", filename=taken, url=OFFLINE))
    other_kind = TABLES["auxiliary" if table.kind == "generator" else "generator"]
    with pytest.raises(TypeError, match=f"takes {table.kind} entries"):
        table.add(scratch(other_kind, name="wrong-8", url=OFFLINE))
    with pytest.raises(UnknownModelFileError, match="unknown .*'nope'; known: "):
        table.get("nope")
    with pytest.raises(ValueError, match="needs a `manual` note"):
        scratch(table, url=None)
    with pytest.raises(ValueError, match="sha256 must be 64"):
        scratch(table, url=OFFLINE, sha256="abc")
    with pytest.raises(ValueError, match="lower-case"):
        scratch(table, name="Upper", url=OFFLINE)


def test_the_listing_says_what_is_here(table: ModelTable[Any], tmp_path: Path) -> None:
    table.add(scratch(table, url=OFFLINE, license="test-only", size_mb=0.5))
    rows = {s.entry.name: s for s in table.statuses()}
    assert list(rows)[-1] == "scratch-8" and set(table.names()) == set(rows)
    status = rows["scratch-8"]
    assert (status.cached, status.here, status.downloadable, status.path) == (
        False,
        False,
        True,
        None,
    )
    source = tmp_path / "s.bin"
    source.write_bytes(PAYLOAD)
    table.install("scratch-8", source)
    row = table.status("scratch-8").to_json()
    assert row["cached"] is row["here"] is True
    assert row["path"] == str(table.cache_path("scratch-8"))
    assert row["kind"] == table.kind and row["license"] == "test-only" and row["size_mb"] == 0.5
    assert row["env"] == table.env_var("scratch-8") and row["override"] is None

"""The photo pipeline's model files (invert/weights.py) and `nada weights`: the same cache
contract as the generators. Pass criteria: every entry is listed without torch; offline,
`pull` fails with exit 2 and a message saying where to put the file and which variable
points at one; `add` copies a file in and records its hash, and a later change to the file
is caught; NADA_WEIGHTS_<NAME> wins over the cache."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main as _main
from invert import weights
from stylegan2.download import ChecksumError


def main(argv: list[str]) -> int:
    """`nada ...` in-process: its exit status (errors exit 2 through argparse)."""
    try:
        return _main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    for entry in weights.list_weights():
        monkeypatch.delenv(weights.env_var(entry.name), raising=False)
    yield tmp_path / "cache"


def test_the_registry_is_torch_free_and_complete() -> None:
    code = (
        "import sys; from invert import weights, photos; "
        "names = [w.name for w in weights.list_weights()]; "
        "assert 'torch' not in sys.modules, 'torch imported'; print(','.join(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == [
        "e4e-ffhq",
        "face-s3fd",
        "face-fan2d",
        "vgg16-torchvision",
    ]
    for entry in weights.list_weights():
        assert entry.url and entry.url.startswith("https://") and entry.manual, entry.name
    assert (
        weights.encoder_for("ffhq-1024") == "e4e-ffhq" and weights.encoder_for("random-64") is None
    )


def test_pull_offline_says_how_to_place_the_file(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = weights.get_weights_info("face-s3fd")
    weights.add_weights(
        dataclasses.replace(entry, url="http://127.0.0.1:9/s3fd.pth"), overwrite=True
    )
    try:
        assert main(["weights", "pull", "face-s3fd", "--no-progress"]) == 2
    finally:
        weights.add_weights(entry, overwrite=True)
    err = capsys.readouterr().err
    assert "NADA_WEIGHTS_FACE_S3FD" in err and str(cache / "weights" / entry.filename) in err
    assert "nada weights add face-s3fd" in err
    assert main(["weights", "pull", "no-such-file"]) == 2
    assert "unknown model file 'no-such-file'" in capsys.readouterr().err


def test_add_records_the_hash_and_catches_a_changed_file(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "e4e.pt"
    source.write_bytes(b"weights v1")
    assert main(["weights", "add", "e4e-ffhq", str(source)]) == 0
    cached = cache / "weights" / "e4e_ffhq_encode.pt"
    assert cached.read_bytes() == b"weights v1"
    assert weights.resolve("e4e-ffhq") == cached
    assert main(["weights", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    listed = next(row for row in rows if row[:2] == ["e4e-ffhq", "~1200"])
    assert listed[-1] == "cached"
    cached.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="recorded in e4e_ffhq_encode.pt.sha256"):
        weights.resolve("e4e-ffhq")
    source.write_bytes(b"weights v2")
    assert main(["weights", "add", "e4e-ffhq", str(source)]) == 2  # different: needs --force
    assert main(["weights", "add", "e4e-ffhq", str(source), "--force"]) == 0
    assert weights.resolve("e4e-ffhq").read_bytes() == b"weights v2"


def test_the_environment_variable_wins(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "mine.pth"
    local.write_bytes(b"vgg")
    monkeypatch.setenv("NADA_WEIGHTS_VGG16_TORCHVISION", str(local))
    assert weights.resolve("vgg16-torchvision") == local
    assert weights.local_path("vgg16-torchvision") == local
    monkeypatch.setenv("NADA_WEIGHTS_VGG16_TORCHVISION", str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="NADA_WEIGHTS_VGG16_TORCHVISION"):
        weights.resolve("vgg16-torchvision")


def test_list_and_add_share_the_generators_rules(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "SIZE", "WHAT", "FOR", "AVAILABLE"]
    assert "NADA_WEIGHTS_<NAME>=PATH or =URL overrides one file" in out
    source = tmp_path / "s3fd.pth"
    source.write_bytes(b"detector")
    assert main(["weights", "add", "face-s3fd", str(source)]) == 0
    cached = cache / "weights" / "s3fd-619a316812.pth"
    before = cached.stat()
    assert main(["weights", "add", "face-s3fd", str(source)]) == 0  # the same bytes: a no-op
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert main(["weights", "pull", "face-s3fd"]) == 0
    assert "(already cached, verified; sha256 " in capsys.readouterr().out

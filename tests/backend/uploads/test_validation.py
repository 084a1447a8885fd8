"""backend.generator_validation: an uploaded generator is checked in a limited child process.

Pass criteria: a file whose unpickling would run code is refused and its payload never
runs (the marker file is not created); wrong architecture, truncated and NaN files are
refused with a message that says why; a good file is re-saved as plain tensors. The
archive bounds (stylegan2.validate.check_archive) admit the largest generator, a 1024 px
config-f one, and are decided without opening a record."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from backend.generator_validation import GeneratorRejected, validate_generator_file
from stylegan2 import validate
from stylegan2.checkpoint import load_generator, random_generator, save_generator
from stylegan2.model import Generator, channels_for


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    loaded = random_generator(8)
    path = tmp_path_factory.mktemp("gen") / "good.pt"
    save_generator(path, loaded.generator, loaded.latent_avg, {"note": "test"})
    return path


class _Payload:
    """Unpickling this runs `touch <marker>`: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_good_generator_is_resaved_as_plain_tensors(good_file: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.pt"
    result = validate_generator_file(good_file, dst)
    assert result.size == 8 and len(result.sha256) == 64
    reloaded = load_generator(dst)
    assert reloaded.identity["size"] == 8
    assert reloaded.metadata["source"]["kind"] == "upload"


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path: Path, container: str) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = {"g_ema": _Payload(marker), "latent_avg": torch.zeros(512)}
    if container == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload))
    with pytest.raises(GeneratorRejected) as info:
        validate_generator_file(evil, tmp_path / "out.pt")
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "out.pt").exists()
    assert str(tmp_path) not in str(info.value)  # the message does not leak server paths


def test_wrong_architecture_truncated_and_nan_are_refused(good_file: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save({"g_ema": {"conv.weight": torch.zeros(3, 3)}}, wrong)
    truncated = tmp_path / "truncated.pt"
    data = good_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    nan = tmp_path / "nan.pt"
    loaded = load_generator(good_file)
    with torch.no_grad():
        next(loaded.generator.parameters()).fill_(float("nan"))
    save_generator(nan, loaded.generator, loaded.latent_avg, {})
    text = tmp_path / "notes.pt"
    text.write_text("just some text")
    for path, why in [
        (wrong, "not a StyleGAN2 generator"),
        (truncated, "truncated or corrupted"),
        (nan, "NaN"),
        (text, "not a PyTorch checkpoint"),
    ]:
        with pytest.raises(GeneratorRejected, match=why) as info:
            validate_generator_file(path, tmp_path / "out.pt")
        assert str(tmp_path) not in str(info.value)
    assert not (tmp_path / "out.pt").exists()


def test_memory_limit_is_enforced(good_file: Path, tmp_path: Path) -> None:
    with pytest.raises(GeneratorRejected, match="limit|could not be checked"):
        validate_generator_file(good_file, tmp_path / "out.pt", memory_bytes=64 << 20)


def test_the_archive_bounds_admit_the_largest_generator(tmp_path: Path) -> None:
    """A 1024 px config-f generator as torch.save writes it passes check_archive, with room
    for a converted file that also carries `g` and `d`, and for channel_multiplier 4."""
    state = Generator(1024, 512, 8, 2).state_dict()
    total = sum(v.numel() * 4 for v in state.values())  # float32
    assert 120 << 20 < total < 130 << 20
    assert 3 * total < validate.MAX_TOTAL_BYTES
    cm4_conv = channels_for(4)[64] ** 2 * 3 * 3 * 4  # the largest tensor at channel_multiplier 4
    assert max(v.numel() * 4 for v in state.values()) < cm4_conv <= validate.MAX_RECORD_BYTES
    path = tmp_path / "ffhq-like.pt"
    torch.save({"g_ema": state, "latent_avg": torch.zeros(512)}, path)
    del state
    validate.check_archive(path)  # no ArchiveRefused
    with zipfile.ZipFile(path) as archive:
        assert 3 * len(archive.infolist()) < validate.MAX_ENTRIES
        [pkl] = [i for i in archive.infolist() if i.filename.endswith("/data.pkl")]
        assert 100 * pkl.file_size < validate.MAX_PICKLE_BYTES


def test_check_archive_reads_only_the_directory(
    good_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unopened(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a record was opened")

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w") as archive:
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as f:
            for _ in range(80):
                f.write(bytes(1 << 20))
    monkeypatch.setattr(zipfile.ZipFile, "open", unopened)
    validate.check_archive(good_file)
    with pytest.raises(validate.ArchiveRefused, match="declares 80.0 MiB once decompressed"):
        validate.check_archive(bomb)

    monkeypatch.setattr(validate, "MAX_DIRECTORY_BYTES", 1024)  # good_file's is ~4 KiB
    with pytest.raises(validate.ArchiveRefused, match="KiB central directory|MiB central"):
        validate.check_archive(good_file)


def test_check_archive_passes_other_files_to_the_loader(good_file: Path, tmp_path: Path) -> None:
    """Not a zip archive (legacy torch.save, a pickle, text): nothing to decompress, the
    loader says what is wrong. A zip without its central directory is refused here."""
    legacy = tmp_path / "legacy.pt"
    torch.save({"x": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    text = tmp_path / "text.pt"
    text.write_text("just some text")
    for path in (legacy, text):
        validate.check_archive(path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good_file.read_bytes()[: 1 << 20])
    with pytest.raises(validate.ArchiveRefused, match="truncated or corrupted"):
        validate.check_archive(cut)
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("a", b"x")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(junk.getvalue().replace(b"PK\x01\x02", b"PK\x01\x03"))
    with pytest.raises(validate.ArchiveRefused, match="truncated or corrupted"):
        validate.check_archive(broken)


def test_the_validator_child_dies_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of the API mid-check: the child it started (with the validator's limits) is
    killed too, instead of living on as an orphan that writes a re-save nobody reads."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "from backend.generator_validation import _limits\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
            " preexec_fn=_limits(8 << 30, 120))\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "child.wait()\n",
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the parent never started its child"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
            assert time.monotonic() < deadline, "the validator child outlived its parent"
            time.sleep(0.05)
    finally:
        parent.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"

"""backend.uploads: an uploaded generator is checked in a limited child process.

Pass criteria: a file whose unpickling would run code is refused and its payload never
runs (the marker file is not created); wrong architecture, truncated and NaN files are
refused with a message that says why; a good file is re-saved as plain tensors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from backend.uploads import GeneratorRejected, validate_generator_file
from stylegan2.checkpoint import load_generator, random_generator, save_generator


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

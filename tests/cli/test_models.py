"""`nada models list|pull|add` through the real dispatcher (local HTTP server, tmp cache)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from stylegan2 import registry
from stylegan2.registry import GeneratorInfo

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"  # README.md says what


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.GENERATORS, "_entries", dict(registry.GENERATORS._entries))
    return tmp_path / "cache"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # parser.exit for CLIError and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def tiny_entry(url: str | None, **kw: object) -> GeneratorInfo:
    fields = dict(name="tiny-8", size=8, domain="test", description="test", filename="t8.pt")
    fields.update(kw)
    return GeneratorInfo(url=url, **fields)  # type: ignore[arg-type]


def test_list_shows_family_license_size_and_availability(
    capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "FAMILY", "DOMAIN", "LICENSE", "MB", "AVAILABLE"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    assert rows["ffhq-1024"].split() == [
        "ffhq-1024", "1024", "stylegan2", "human", "faces", "nvidia-nc", "?", "downloadable"
    ]  # fmt: skip
    assert rows["sg3-r-afhqv2-512"].split() == [
        "sg3-r-afhqv2-512", "512", "stylegan3", "animal", "faces", "nvidia-nc", "250",
        "downloadable",
    ]  # fmt: skip
    assert rows["afhq-dog-512"].split()[-2:] == ["360", "downloadable"]
    assert "random-<size>" in rows
    assert "nvidia-nc: NVIDIA Source Code License-NC (non-commercial use only)" in out
    assert f"cache: {isolated}" in out
    assert max(len(line) for line in lines[: lines.index("")]) <= 100  # the table
    registry.add_generator(tiny_entry(None, manual="Ask the lab for it."))  # type: ignore[arg-type]
    _, out, _ = run(capsys, "models", "list")
    assert next(line for line in out.splitlines() if line.startswith("tiny-8")).endswith("manual")
    assert "tiny-8: Ask the lab for it." in out  # the manual note

    target = registry.cache_path("ffhq-1024")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placed by hand")
    _, out, _ = run(capsys, "models", "list")
    ffhq = next(line for line in out.splitlines() if line.startswith("ffhq-1024"))
    assert ffhq.endswith("  cached")

    _, out, _ = run(capsys, "models", "list", "--json")
    data = json.loads(out)
    assert data["cache_dir"] == str(isolated)
    by_name = {g["name"]: g for g in data["generators"]}
    assert by_name["ffhq-1024"]["cached"] is True
    assert by_name["ffhq-1024"]["path"] == str(target)
    assert by_name["lsun-car-512"] == by_name["lsun-car-512"] | {
        "size": 512,
        "family": "stylegan2",
        "format": "nvidia-pkl",
        "content_box": [0, 64, 512, 448],
        "license_id": "nvidia-nc",
        "size_mb": 360,
        "availability": "downloadable",
        "cached": False,
    }
    assert by_name["tiny-8"]["availability"] == "manual"


def test_pull_downloads_then_verifies(
    capsys: pytest.CaptureFixture[str], file_server: tuple[str, Path]
) -> None:
    base, root = file_server
    (root / "t8.pt").write_bytes(b"weights" * 1000)
    registry.add_generator(tiny_entry(f"{base}/t8.pt"))
    code, out, _ = run(capsys, "models", "pull", "tiny-8", "--no-progress")
    assert code == 0 and "downloaded, verified" in out
    assert registry.cached_path("tiny-8").read_bytes() == b"weights" * 1000
    code, out, _ = run(capsys, "models", "pull", "tiny-8")
    assert code == 0 and "already cached, verified" in out

    registry.cached_path("tiny-8").write_bytes(b"changed")
    code, _, err = run(capsys, "models", "pull", "tiny-8")
    assert code == 2 and "nada: error: tiny-8: cached file" in err and "sha256" in err


def test_pull_errors(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    code, _, err = run(capsys, "models", "pull", "ffqh-1024")
    assert code == 2
    assert "nada: error: unknown generator 'ffqh-1024'; known: ffhq-1024" in err
    registry.add_generator(tiny_entry(None, name="by-hand-8", filename="h.pt", manual="Ask."))
    code, _, err = run(capsys, "models", "pull", "by-hand-8")
    assert code == 2 and "has no download URL. Ask." in err
    code, _, err = run(capsys, "models", "pull", "random-64")
    assert code == 2 and "nothing to download" in err
    registry.add_generator(tiny_entry("http://127.0.0.1:9/t8.pt"))  # nothing listens there
    code, _, err = run(capsys, "models", "pull", "tiny-8")
    assert code == 2
    assert "could not download tiny-8 from http://127.0.0.1:9/t8.pt" in err
    assert str(isolated / "generators" / "t8.pt") in err


def test_models_without_an_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 2 and "list" in out and "pull" in out and "add" in out


def test_add_checks_the_file_before_caching_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from stylegan2.checkpoint import random_generator, save_generator

    small = random_generator(8, style_dim=32, n_mlp=2)
    path = tmp_path / "mine.pt"
    save_generator(path, small.generator, small.latent_avg, {"source": "test"})
    registry.add_generator(
        GeneratorInfo(
            name="mine-8",
            size=8,
            domain="t",
            description="t",
            filename="m.pt",
            manual="x",
            style_dim=32,
            n_mlp=2,
        )
    )
    code, out, _ = run(capsys, "models", "add", "mine-8", str(path))
    assert code == 0 and "added" in out
    assert registry.cached_path("mine-8").read_bytes() == path.read_bytes()

    code, _, err = run(capsys, "models", "add", "lsun-church-256", str(path))
    assert (
        code == 2
        and "is not lsun-church-256: it has size 8, style_dim 32, n_mlp 2; lsun-church-256 needs "
        "size 256, style_dim 512, n_mlp 8"
        in err
    )
    junk = tmp_path / "junk.pt"
    junk.write_text("<html>404</html>")
    code, _, err = run(capsys, "models", "add", "mine-8", str(junk))
    assert code == 2 and "not a PyTorch checkpoint" in err
    save_generator(path, small.generator, small.latent_avg, {"source": "other"})
    code, _, err = run(capsys, "models", "add", "mine-8", str(path))
    assert code == 2 and "--force" in err
    code, _, _ = run(capsys, "models", "add", "mine-8", str(path), "--force")
    assert code == 0


def test_listing_does_not_import_torch() -> None:
    code = (
        "import argparse, sys, cli.models as c; p = argparse.ArgumentParser(); "
        "c.register(p.add_subparsers()); a = p.parse_args(['models', 'list']); a.func(a); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_an_override_is_listed_and_pulled_from(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "shared" / "ffhq.pt"
    local.parent.mkdir()
    local.write_bytes(b"a copy on a shared disk")
    monkeypatch.setenv("NADA_GENERATOR_FFHQ_1024", str(local))
    _, out, _ = run(capsys, "models", "list")
    ffhq = next(line for line in out.splitlines() if line.startswith("ffhq-1024"))
    assert ffhq.endswith("cached  (NADA_GENERATOR_FFHQ_1024)")
    assert "NADA_GENERATOR_<NAME>=PATH or =URL overrides one file" in out
    _, out, _ = run(capsys, "models", "list", "--json")
    row = next(g for g in json.loads(out)["generators"] if g["name"] == "ffhq-1024")
    assert (row["here"], row["cached"], row["override"]) == (True, False, str(local))
    code, out, _ = run(capsys, "models", "pull", "ffhq-1024")
    assert code == 0 and f"{local} (from NADA_GENERATOR_FFHQ_1024;" in out
    assert registry.cached_path("ffhq-1024") is None  # used in place, not copied
    monkeypatch.setenv("NADA_GENERATOR_FFHQ_1024", str(tmp_path / "gone.pt"))
    code, _, err = run(capsys, "models", "pull", "ffhq-1024")
    assert code == 2 and "NADA_GENERATOR_FFHQ_1024 points at" in err


def test_add_installs_an_nvidia_pickle_and_refuses_a_poisoned_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`add` reads a .pkl as `--generator my.pkl` does (as data); a pickle that would run
    code is refused by name and nothing is cached."""
    registry.add_generator(
        GeneratorInfo(
            name="fixture-64",
            size=64,
            domain="t",
            description="t",
            filename="f64.pkl",
            url="https://nvlabs-fi-cdn.invalid/f.pkl",
            format="nvidia-pkl",
            family="stylegan3",
            style_dim=64,
            n_mlp=None,
        )
    )
    code, _, err = run(capsys, "models", "add", "fixture-64", str(NVIDIA / "ada_sg2_64.pkl"))
    assert code == 2
    assert (
        "is not fixture-64: it has family stylegan2, style_dim 128; fixture-64 needs family "
        "stylegan3, style_dim 64" in err
    )

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"  # GLOBAL posix.system, called with "touch <marker>"
    command = f"touch {marker}".encode()
    evil.write_bytes(
        b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    )
    code, _, err = run(capsys, "models", "add", "fixture-64", str(evil))
    assert code == 2 and "refusing to load" in err and "posix.system" in err
    assert not marker.exists() and registry.cached_path("fixture-64") is None

    code, out, _ = run(capsys, "models", "add", "fixture-64", str(NVIDIA / "sg3_t_64.pkl"))
    assert code == 0 and "added" in out
    cached = registry.cached_path("fixture-64")
    assert cached is not None and cached.read_bytes() == (NVIDIA / "sg3_t_64.pkl").read_bytes()
    converted = registry.converted_path("fixture-64")
    assert f"fixture-64: converted into {converted}" in out and converted.is_file()
    _, out, _ = run(capsys, "models", "list")
    assert next(line for line in out.splitlines() if line.startswith("fixture-64")).endswith(
        "cached"
    )


def test_pull_of_a_pickle_entry_converts_it(
    capsys: pytest.CaptureFixture[str],
    file_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, root = file_server
    shutil.copy(NVIDIA / "ada_sg2_64.pkl", root / "mirror.pkl")
    url = "https://nvlabs-fi-cdn.invalid/ada.pkl"  # the override replaces it
    entry = tiny_entry(url, name="ada-64", size=64, style_dim=128, format="nvidia-pkl")
    registry.add_generator(entry)
    monkeypatch.setenv("NADA_GENERATOR_ADA_64", f"{base}/mirror.pkl")
    code, out, _ = run(capsys, "models", "pull", "ada-64", "--no-progress")
    assert code == 0 and "downloaded, verified" in out
    converted = registry.converted_path("ada-64")
    assert f"ada-64: converted into {converted}" in out and converted.is_file()

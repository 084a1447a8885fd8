"""`nada domains list|add`: the ready-made domains' listing, and `add`'s check that a file is
a generator of its base's size (the pull's download is the rule of every model file,
tests/cli/test_models.py; through the service: tests/backend/test_domains_api.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stylegan2 import domains
from stylegan2.domains import DomainInfo
from tests.cli.test_models import run


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(domains.DOMAINS, "_entries", dict(domains.DOMAINS._entries))
    monkeypatch.delenv("NADA_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


def test_list_shows_base_prompts_and_availability(capsys: pytest.CaptureFixture[str]) -> None:
    domains.add_domain(
        DomainInfo(
            name="test-tiny",
            filename="t.pt",
            description="test",
            base="random-32",
            source_text="photo",
            target_text="sketch",
            manual="by hand only",
        )  # fmt: skip
    )
    code, out, _ = run(capsys, "domains", "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "ffhq-1024" in rows["nada-anime"] and "downloadable" in rows["nada-anime"]
    assert "photo -> sketch" in rows["test-tiny"] and "manual" in rows["test-tiny"]
    code, out, _ = run(capsys, "domains", "list", "--json")
    listed = {d["name"]: d for d in json.loads(out)["domains"]}
    assert listed["nada-anime"]["url"].endswith(
        "/rinong/stylegan-nada-models/resolve/main/anime.pt"
    )
    assert listed["nada-anime"]["availability"] == "downloadable"


def test_add_takes_only_a_generator_of_the_base_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    from stylegan2.checkpoint import random_generator

    domains.add_domain(
        DomainInfo(
            name="test-tiny",
            filename="t.pt",
            description="test",
            base="random-32",
            manual="by hand only",
        )  # fmt: skip
    )
    wrong, right = tmp_path / "16.pt", tmp_path / "32.pt"
    torch.save({"g_ema": random_generator(16).generator.state_dict()}, wrong)
    torch.save({"g_ema": random_generator(32).generator.state_dict()}, right)
    code, _, err = run(capsys, "domains", "add", "test-tiny", str(wrong))
    assert code != 0 and "draws 16 px" in err and "random-32 draws 32 px" in err
    code, out, _ = run(capsys, "domains", "add", "test-tiny", str(right))
    assert code == 0, out
    code, out, _ = run(capsys, "domains", "list")
    assert "cached" in next(line for line in out.splitlines() if line.startswith("test-tiny"))


def test_pull_downloads_and_checks_the_file(
    capsys: pytest.CaptureFixture[str], file_server: tuple[str, Path]
) -> None:
    import torch

    from stylegan2.checkpoint import random_generator

    url, root = file_server
    torch.save({"g_ema": random_generator(16).generator.state_dict()}, root / "16.pt")
    domains.add_domain(
        DomainInfo(
            name="test-tiny",
            filename="t.pt",
            description="test",
            base="random-16",
            url=f"{url}/16.pt",
        )  # fmt: skip
    )
    code, out, err = run(capsys, "domains", "pull", "test-tiny", "--no-progress")
    assert code == 0, err
    assert "downloaded, verified" in out
    domains.add_domain(
        DomainInfo(
            name="test-wrong",
            filename="w.pt",
            description="test",
            base="random-32",
            url=f"{url}/16.pt",
        )  # fmt: skip
    )
    code, _, err = run(capsys, "domains", "pull", "test-wrong", "--no-progress")
    assert code != 0 and "draws 16 px" in err

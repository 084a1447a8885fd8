"""`nada generate --edit`, `nada video --edit-sweep` and `nada directions` as a user runs
them (in-process through cli.main.main), on random-16 generators on the CPU and synthetic
direction files; the registry's download through a local file server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli.main import main
from nada import rundir
from tests.stand_ins import save_stand_in_adapted
from worker.video import count_frames

SIZE = 16


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_stand_in_adapted(tmp_path_factory.mktemp("job") / rundir.ADAPTED,
                                 f"random-{SIZE}", seed=3)  # fmt: skip


@pytest.fixture(scope="module")
def direction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dirs") / "mine.pt"
    torch.save(torch.linspace(-1, 1, 512).reshape(1, 512), path)
    return path


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_edit_moves_the_seeds_alike_alone_and_beside_the_base(
    tmp_path, adapted, direction
):
    common = ["--seeds", "1,2", "--device", "cpu", "--edit", f"{direction}=3"]
    alone, both, plain = tmp_path / "alone.png", tmp_path / "both.png", tmp_path / "plain.png"
    assert main(["generate", "--checkpoint", f"random-{SIZE}", "--out", str(alone), *common]) == 0
    assert main(["generate", "--checkpoint", str(adapted), "--base", f"random-{SIZE}",
                 "--out", str(both), *common]) == 0  # fmt: skip
    assert main(["generate", "--checkpoint", f"random-{SIZE}", "--out", str(plain),
                 "--seeds", "1,2", "--device", "cpu"]) == 0  # fmt: skip
    # The plain command and the render engine draw the same edited source row.
    assert np.array_equal(_png(both)[:SIZE], _png(alone))
    assert not np.array_equal(_png(alone), _png(plain))


def test_video_sweeps_an_edit_over_its_frames(tmp_path, adapted, direction):
    out = tmp_path / "sweep.gif"
    argv = ["video", "--checkpoint", str(adapted), "--seeds", "4,4", "--frames", "3",
            "--edit-sweep", f"{direction}=-2:2", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert count_frames(out) == 4


def test_bad_edits_are_refused_naming_the_flag(tmp_path, adapted, capsys):
    out = str(tmp_path / "x.png")
    cases = {
        ("--edit", "age=2"): "argument --edit: direction 'age' is in the W space of 'ffhq-1024'",
        ("--edit", "nosuch.pt=1"): "argument --edit: no such direction file: nosuch.pt",
        ("--edit", "age=12"): "argument --edit: need the strength of 'age' in -10..10",
    }
    for (flag, value), says in cases.items():
        with pytest.raises(SystemExit):
            main(["generate", "--checkpoint", f"random-{SIZE}", "--out", out, "--seeds", "1",
                  "--device", "cpu", flag, value])  # fmt: skip
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["video", "--checkpoint", str(adapted), "--edit-sweep", "age=3",
              "--out", str(tmp_path / "v.gif"), "--device", "cpu"])  # fmt: skip
    assert "argument --edit-sweep: 'age=3' must be NAME=START:STOP" in capsys.readouterr().err


def test_directions_pull_downloads_once_and_add_refuses_another_shape(
    tmp_path, monkeypatch, capsys, file_server
):
    url, root = file_server
    torch.save(torch.ones(1, 512), root / "age.pt")
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NADA_DIRECTION_AGE", f"{url}/age.pt")  # a mirror of the entry's file
    assert main(["directions", "pull", "age", "--no-progress"]) == 0
    cached = tmp_path / "cache" / "directions" / "interfacegan-ffhq-age.pt"
    assert cached.is_file() and "downloaded, verified" in capsys.readouterr().out
    assert main(["directions", "pull", "age", "--no-progress"]) == 0
    assert "already cached, verified" in capsys.readouterr().out

    wrong = tmp_path / "wrong.pt"
    torch.save(torch.ones(7, 512), wrong)
    with pytest.raises(SystemExit):
        main(["directions", "add", "smile", str(wrong)])
    assert "has shape [7, 512]" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "directions" / "interfacegan-ffhq-smile.pt").exists()

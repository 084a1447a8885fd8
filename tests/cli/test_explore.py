"""`nada video` and `nada generate --base/--mix` as a user runs them (in-process through
cli.main.main), on random-16 generators on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from nada import rundir
from tests.stand_ins import save_stand_in_adapted
from worker.video import count_frames

SIZE = 16


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another random generator, saved as an adapted.pt whose run adapted random-16."""
    return save_stand_in_adapted(tmp_path_factory.mktemp("job") / rundir.ADAPTED,
                                 f"random-{SIZE}", seed=3)  # fmt: skip


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_video_writes_every_frame(tmp_path, capsys, adapted, suffix):
    out = tmp_path / "videos" / f"walk.{suffix}"
    argv = ["video", "--checkpoint", str(adapted), "--seeds", "4,5", "--frames", "3",
            "--fps", "10", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert count_frames(out) == 4  # one transition of 3 frames, then the last keyframe
    assert f"{out} (4 frames at 10 fps)" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no work files left


def test_generate_draws_the_base_row_over_the_adapted_row(tmp_path, adapted):
    base, both = tmp_path / "base.png", tmp_path / "both.png"
    common = ["--seeds", "1,2", "--truncation", "0.8", "--device", "cpu"]
    assert main(["generate", "--checkpoint", f"random-{SIZE}", "--out", str(base), *common]) == 0
    argv = ["generate", "--checkpoint", str(adapted), "--base", f"random-{SIZE}",
            "--out", str(both), *common]  # fmt: skip
    assert main(argv) == 0
    grid, alone = np.asarray(Image.open(both)), np.asarray(Image.open(base))
    assert grid.shape == (2 * SIZE + 2, 2 * SIZE + 2, 3)
    assert np.array_equal(grid[:SIZE], alone)  # the source row is the base generator's own
    assert not np.array_equal(grid[SIZE + 2 :], alone)


def test_a_render_on_the_command_line_logs_its_file_not_a_job(tmp_path, adapted, caplog):
    """No "of job None": a CLI render has no job, and its log line names the checkpoint."""
    argv = ["generate", "--checkpoint", str(adapted), "--base", f"random-{SIZE}",
            "--seeds", "1", "--out", str(tmp_path / "g.png"), "--device", "cpu"]  # fmt: skip
    with caplog.at_level("INFO", logger="worker.renders"):
        assert main(argv) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "worker.renders"]
    assert any(line.startswith(f"render (seeds) of {adapted}: ") for line in lines), lines
    assert not any("None" in line for line in lines), lines


def test_generate_mix_draws_both_grids(tmp_path, adapted):
    out = tmp_path / "mix.png"
    argv = ["generate", "--checkpoint", str(adapted), "--mix", "1,2:3,4,5", "--crossover",
            "3", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0  # the base generator: the one the checkpoint names
    tiles = SIZE + 2
    assert Image.open(out).size == (4 * tiles - 2, 2 * 3 * tiles - 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "4"], "argument --seeds: must hold 2..8 seeds (got 1)"),
        (["--seeds", "a-b"], "argument --seeds: must look like '0-7' or '1,5,9' (got 'a-b')"),
        (["--seeds", ","], "argument --seeds: must name at least one seed (got ',')"),
        (["--frames", "1"], "argument --frames: must be 2..120 (got 1)"),
        (["--fps", "61"], "argument --fps: must be 1..60 (got 61)"),
        (["--truncation", "2"], "argument --truncation"),
        (["--out", "walk.webm"], "argument --out: must end in .mp4 or .gif"),
        (["--checkpoint", "/no/such.pt"], "argument --checkpoint: no such file"),
        (["--generator", "ffqh-1024"], "argument --generator: unknown generator 'ffqh-1024'"),
        (["--generator", "random-8"], "argument --generator: the base generator draws 8 px"),
        (["--device", "tpu"], "argument --device"),
    ],
)
def test_video_refuses_bad_values_naming_the_flag(tmp_path, capsys, adapted, argv, message):
    base = {"--checkpoint": str(adapted), "--out": str(tmp_path / "v.mp4"), "--device": "cpu"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value if flag != "--out" else str(tmp_path / value)
    with pytest.raises(SystemExit) as exit_info:
        main(["video", *[x for pair in base.items() for x in pair]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mix", "1,2"], "argument --mix: must look like ROWS:COLS"),
        (
            ["--mix", "1:2", "--crossover", "9", "--base", "random-32"],
            "argument --crossover: must be below this generator's 8 W+ entries",
        ),  # fmt: skip
        (["--mix", "1:2", "--base", "nope-1024"], "argument --base: unknown generator"),
        (
            ["--base", "random-32", "--seeds", "0-16"],
            "argument --seeds: must hold 1..16 seeds (got 17)",
        ),
    ],
)
def test_generate_explore_refuses_bad_values_naming_the_flag(tmp_path, capsys, argv, message):
    base = {"--checkpoint": "random-32", "--out": str(tmp_path / "g.png"), "--device": "cpu"}
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *[x for pair in base.items() for x in pair], *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

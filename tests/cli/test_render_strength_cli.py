"""`nada generate --strength/--blend` and `nada video --domains` as a user runs them (in
process through cli.main.main), on random-16 generators on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylegan2
from cli.main import main
from nada import rundir
from tests.stand_ins import save_stand_in_adapted
from worker.video import count_frames

SIZE = 16
BASE = f"random-{SIZE}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two run directories holding another random generator each, as adapted.pt of random-16."""
    out = []
    for seed in (3, 4):
        run = tmp_path_factory.mktemp(f"run{seed}")
        save_stand_in_adapted(run / rundir.ADAPTED, BASE, seed)
        out.append(run)
    return out[0], out[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator of another size (8 px): not the base's model."""
    other = stylegan2.load_generator("random-8", seed=1)
    path = tmp_path_factory.mktemp("small") / "small.pt"
    stylegan2.save_generator(path, other.generator, other.latent_avg, {})
    return path


def _rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    grid = np.asarray(Image.open(path).convert("RGB"))
    return grid[:SIZE], grid[SIZE + 2 :]


def test_generate_strength_0_draws_the_base_and_a_blend_draws_something_else(tmp_path, runs):
    common = ["--checkpoint", str(runs[0] / rundir.ADAPTED), "--seeds", "1,2", "--device", "cpu"]
    assert main(["generate", *common, "--strength", "0", "--out", str(tmp_path / "0.png")]) == 0
    source, adapted = _rows(tmp_path / "0.png")  # --strength alone draws beside the base
    assert np.array_equal(source, adapted)
    argv = ["generate", *common, "--strength", "0.5", "--blend", f"{runs[1]}=0.5",
            "--out", str(tmp_path / "b.png")]  # fmt: skip
    assert main(argv) == 0
    source_b, blended = _rows(tmp_path / "b.png")
    assert np.array_equal(source_b, source) and not np.array_equal(blended, source)


def test_video_through_domains_writes_every_frame(tmp_path, capsys, runs):
    out = tmp_path / "styles.gif"
    argv = ["video", "--checkpoint", str(runs[0] / rundir.ADAPTED), "--domains", "4,5",
            "--blend", str(runs[1]), "--frames", "2", "--fps", "10", "--out", str(out),
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert count_frames(out) == (3 - 1) * 2 + 1  # the base, --checkpoint, --blend
    assert f"{out} (5 frames at 10 fps)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strength", "1.6"], "argument --strength: must be 0.0..1.5 (got 1.6)"),
        (["--strength-fine", "-1"], "argument --strength-fine: must be 0.0..1.0 (got -1.0)"),
        (["--blend", "/no/such/run=0.5"], "argument --blend: no such adapted generator"),
        (["--blend", "RUN=2"], "argument --blend: must be 0.0..1.5 (got 2.0)"),
        (["--blend", "RUN=x"], "argument --blend: must be RUN|PT=STRENGTH"),
        (["--blend", "SMALL"], "the base a stylegan2 of 16 px: not its model"),
    ],
)
def test_bad_strengths_and_blends_are_named_by_their_flag(tmp_path, capsys, runs, small, argv,
                                                          message):  # fmt: skip
    argv = [a.replace("RUN", str(runs[1])).replace("SMALL", str(small)) for a in argv]
    common = ["--checkpoint", str(runs[0] / rundir.ADAPTED), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *common, *argv, "--out", str(tmp_path / "g.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "g.png").exists()

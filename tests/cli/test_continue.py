"""`nada adapt --resume-from-result DIR --steps N` as a user runs it (in-process, through
cli.main.main), on the 8-px random generator and the random 'nada-tiny' CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stylegan2
from cli.main import main
from nada.rundir import RESUME

TINY = [
    "--source", "photo", "--target", "sketch", "--generator", "random-8",
    "--clip-models", "nada-tiny:random", "--layers", "1", "--batch-size", "1",
    "--probe-batch", "2", "--n-samples", "2", "--score-latents", "0", "--sample-every", "1",
    "--seed", "7", "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parent") / "run"
    assert main(["adapt", *TINY, "--steps", "2", "--out", str(out)]) == 0
    return out


def test_continue_a_finished_run(tmp_path, parent, capsys):
    capsys.readouterr()
    out = tmp_path / "more"
    argv = ["adapt", "--resume-from-result", str(parent), "--steps", "2", "--lr", "0.001"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4 and summary["continued_from"] == str(parent)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 4]
    meta = stylegan2.load_generator(str(out / "adapted.pt")).metadata
    assert meta["continued_from"]["step"] == 2
    assert meta["params"]["lr"] == 0.001 and meta["params"]["steps"] == 4
    assert meta["params"]["seed"] == 7 and meta["params"]["generator"] == "random-8"
    assert (out / RESUME).is_file()

    # Flags repeated with the parent's own values are no change.
    again = ["adapt", *TINY, "--resume-from-result", str(parent), "--steps", "1"]
    assert main([*again, "--out", str(tmp_path / "again")]) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--steps", "0"], "argument --steps: must be at least 1 more step (got 0)"),
        (["--steps", "4999"], "argument --steps: must be at most 4998 more"),
        (["--steps", "1", "--seed", "8"], "argument --seed: cannot change in a continuation"),
        (["--steps", "1", "--target", "oil"], "argument --target: cannot change"),
        (["--steps", "1", "--clip-models", "ViT-B-32"], "argument --clip-models: cannot change"),
        (["--steps", "1", "--lr", "7"], "argument --lr: must be 1e-06..1.0 (got 7.0)"),
        (["--steps", "1", "--resume", "x.pt"], "argument --resume: cannot be combined"),
    ],
)
def test_refusals_name_the_flag(tmp_path, parent, capsys, flags, message):
    out = tmp_path / "refused"
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", "--resume-from-result", str(parent), *flags, "--out", str(out)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_run_without_a_resume_point_is_refused(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "adapted.pt").write_bytes(b"a run made before continuations were kept")
    with pytest.raises(SystemExit):
        main(
            [
                "adapt",
                "--resume-from-result",
                str(old),
                "--steps",
                "5",
                "--out",
                str(tmp_path / "o"),
            ]
        )
    err = capsys.readouterr().err
    assert "argument --resume-from-result" in err and "has no resume.pt" in err


def test_snapshots_their_table_and_continuing_from_one(tmp_path, capsys):
    """--snapshot-every keeps OUT/snapshots/, the run prints them with the recommended
    step, and --from-step continues from one (equal to a run that stopped there, continued:
    tests/worker/test_snapshots.py checks the weights)."""
    out = tmp_path / "snapped"
    flags = [f for f in TINY if f not in ("--score-latents", "0")] + ["--score-latents", "2"]
    argv = ["adapt", *flags, "--steps", "3", "--snapshot-every", "1", "--out", str(out)]
    capsys.readouterr()
    assert main([*argv, "--min-content", "-1", "--min-diversity", "0"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert [s["step"] for s in summary["snapshots"]] == [1, 2, 3]
    assert summary["snapshots"][-1]["file"] == str(out / "adapted.pt")
    assert summary["recommended"]["step"] in (1, 2, 3)  # every step passes these thresholds
    assert "content >= -1" in summary["recommended"]["reason"]
    assert "direction" in captured.err and "<- recommended" in captured.err
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [
        "step_000001.pt",
        "step_000002.pt",
    ]

    more = tmp_path / "from1"
    argv = ["adapt", "--resume-from-result", str(out), "--from-step", "1", "--steps", "1"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--out", str(more)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    meta = stylegan2.load_generator(str(more / "adapted.pt")).metadata
    assert meta["continued_from"]["step"] == 1 and meta["steps_done"] == 2

    with pytest.raises(SystemExit) as refused:
        main([*argv[:4], "7", *argv[5:], "--out", str(tmp_path / "x")])
    assert refused.value.code == 2
    assert "argument --from-step: " in capsys.readouterr().err

"""`nada sweep` on this machine: one run per combination of the list-valued flags, the same
grid rules as the service. Pass criteria: two runs land in their own folders with the swept
value in each checkpoint's parameters and a sweep.json summing them up; bad values and
invalid combinations exit 2 naming the flag before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stylegan2
from cli.main import main

TINY = ["--source", "photo", "--target", "sketch", "--generator", "random-8",
        "--clip-models", "nada-tiny:random", "--steps", "1", "--probe-batch", "1",
        "--batch-size", "1", "--n-samples", "1", "--sample-every", "1"]  # fmt: skip


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_a_local_sweep_runs_every_combination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    assert _exit(["sweep", *TINY, "--layers", "1,2", "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["varying"] == ["layers"]
    assert [r["values"] for r in summary["runs"]] == [{"layers": 1}, {"layers": 2}]
    for run, layers in zip(summary["runs"], (1, 2), strict=True):
        folder = Path(run["dir"])
        assert folder.parent == out and folder.name.startswith(f"0{layers}-layers={layers}")
        meta = stylegan2.load_generator(run["checkpoint"]).metadata
        assert meta["params"]["layers"] == layers and meta["params"]["target_text"] == "sketch"
        assert "total" in run["losses"]
    assert "layers=2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layers", "3"], "nothing to sweep"),
        (["--layers", "3,100"], "argument --layers: in combination 2 (layers=100)"),
        (["--lr", "0.1,fast"], "argument --lr: 'fast' is not a number"),
        (["--layers", "3,3"], "argument --layers: lists a value twice"),
        (
            ["--include-torgb", "true,maybe"],
            "argument --include-torgb: 'maybe' is not true or false",
        ),
        (["--layers", "1,2", "--steps", "1,2", "--max-jobs", "3"], "makes 4 jobs; at most 3"),
        (["--layers", "1,2"], "argument --out: required"),
        (["--target", "sketch|", "--layers", "1,2"], "argument --target: an empty value"),
    ],
)
def test_bad_sweeps_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["sweep", *TINY, *extra, "--device", "cpu"]
    if "argument --out" not in message:
        argv += ["--out", str(tmp_path / "o")]
    assert _exit(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

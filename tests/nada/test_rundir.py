"""The run-directory layout is a contract: the engine writes it, the worker publishes it,
the API serves it, users' scripts read it. Its names live in nada/rundir.py alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nada import rundir

ROOT = Path(__file__).resolve().parents[2]


def test_the_layout(tmp_path: Path) -> None:
    r = tmp_path
    assert rundir.adapted_path(r) == r / "adapted.pt"
    assert rundir.domain_path(r) == r / "domain.pt"
    assert rundir.metrics_path(r) == r / "metrics.jsonl"
    assert rundir.params_path(r) == r / "params.json"
    assert rundir.sample_path(r, 50) == r / "samples" / "step_000050.png"
    assert rundir.intermediate_checkpoint_path(r, 100) == r / "checkpoints" / "step_000100.pt"
    assert rundir.resume_metrics_path(r) == r / "checkpoints" / "metrics.jsonl"
    assert rundir.attempt_dir(r, 3) == r / "attempts" / "3"
    assert rundir.step_of(rundir.sample_path(r, 7)) == 7
    assert rundir.step_of(rundir.intermediate_checkpoint_path(r, 12)) == 12
    assert rundir.step_of(r / "adapted.pt") is None


def test_intermediate_checkpoints_are_found_by_step(tmp_path: Path) -> None:
    for step in (10, 2, 100):
        rundir.write_bytes(rundir.intermediate_checkpoint_path(tmp_path, step), b"x")
    rundir.write_bytes(tmp_path / "checkpoints" / "step_junk.pt", b"x")
    assert rundir.intermediate_checkpoint_steps(tmp_path) == [2, 10, 100]
    assert rundir.latest_intermediate_checkpoint(tmp_path) == (
        rundir.intermediate_checkpoint_path(tmp_path, 100)
    )
    assert rundir.latest_intermediate_checkpoint(tmp_path / "empty") is None


def test_no_other_module_spells_the_layout() -> None:
    """Every writer and reader goes through nada.rundir: no file name of the layout is
    spelled as a literal anywhere else in the packages."""
    spelled = re.compile(
        r"""["'](adapted\.pt|domain\.pt|resume\.pt|start\.pt|metrics\.jsonl|params\.json|checkpoints|"""
        r"""attempts)["']|step_\{"""
    )
    offenders = []
    for package in ("stylegan2", "jobs", "worker", "backend"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if spelled.search(code) and not code.strip().startswith(('"', "'")):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_atomic_writes_leave_the_old_file_on_error(tmp_path: Path) -> None:
    target = rundir.write_text(tmp_path / "a" / "f.txt", "old")
    with pytest.raises(RuntimeError), rundir.atomic_open(target, "w") as f:
        f.write("half")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]  # no temporary left
    assert target.stat().st_mode & 0o777 == 0o644


def test_publish_links_or_copies(tmp_path: Path) -> None:
    src = rundir.write_bytes(tmp_path / "src.bin", b"weights")
    linked = rundir.publish(src, tmp_path / "out" / "a.bin")
    copied = rundir.publish(src, tmp_path / "out" / "b.bin", copy=True)
    assert linked.read_bytes() == copied.read_bytes() == b"weights"
    assert linked.stat().st_ino == src.stat().st_ino  # a hard link, same filesystem
    assert copied.stat().st_ino != src.stat().st_ino
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin", "b.bin"]


def test_atomic_output_renames_what_a_streamed_writer_wrote(tmp_path: Path) -> None:
    target = tmp_path / "a" / "render.mp4"
    with rundir.atomic_output(target) as tmp, rundir.atomic_output(target) as other:
        assert tmp.parent == target.parent and tmp.suffix == ".mp4"  # encoders pick by suffix
        assert tmp != other and not target.exists()  # two writers never share a temp file
        tmp.write_bytes(b"frames")  # a writer that opens the path itself (ffmpeg, PIL, torch)
        other.write_bytes(b"other frames")
    assert target.read_bytes() == b"frames"  # the last block to end (the outer one) wins, whole
    assert [p.name for p in target.parent.iterdir()] == ["render.mp4"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_output_removes_its_file_on_error(tmp_path: Path) -> None:
    target = rundir.write_bytes(tmp_path / "render.gif", b"old")
    with pytest.raises(RuntimeError), rundir.atomic_output(target) as tmp:
        tmp.write_bytes(b"half a video")
        raise RuntimeError("canceled")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["render.gif"]

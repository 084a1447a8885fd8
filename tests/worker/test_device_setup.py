"""One device set-up for every engine (stylegan2.device.prepare), seen from fresh worker
processes: an inversion, a render or an edit that is the first job of its process runs with
the torch settings an adaptation runs with and leaves behind. (The bug this guards: TF32
and the heap setting came with the adaptation engine only, so in a shared worker a photo
job got them only if an adaptation had run first in that process.)

The real engine calls run on tiny models in subprocesses (tests/worker/fresh_worker_probe.py),
which record what torch reads while each call reports progress. On a CPU the TF32 flags and
the float32 matmul precision are still set and read, so the check holds on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from stylegan2.device import prepare

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("fresh_worker_probe.py")


def fresh_worker(work: Path, *engines: str) -> dict[str, Any]:
    """Run `engines` in order in a new Python process; its settings.json."""
    done = subprocess.run(
        [sys.executable, str(PROBE), str(work), *engines],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((work / "settings.json").read_text())


def one_state(run: dict[str, Any]) -> dict[str, Any]:
    """The settings a call ran with: one state from its first progress event to its last."""
    assert len(run["states"]) == 1, f"{run['engine']} changed settings mid-run: {run['states']}"
    return run["states"][0]


@pytest.fixture(scope="module")
def first_worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A process whose first job is an inversion, then an adaptation, then an inversion."""
    work = tmp_path_factory.mktemp("worker")
    return work, fresh_worker(work, "invert", "adapt", "invert")


@pytest.fixture(scope="module")
def after_adaptation(first_worker: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    _, record = first_worker
    invert_first, adapt, invert_after = record["runs"]
    assert [r["engine"] for r in record["runs"]] == ["invert", "adapt", "invert"]
    state = one_state(adapt)
    assert one_state(invert_after) == state
    # The set-up changes what a fresh process reads, so a call without it would differ.
    assert state != record["before"]
    return state


def test_an_inversion_first_in_a_fresh_worker_runs_as_after_an_adaptation(
    first_worker: tuple[Path, dict[str, Any]], after_adaptation: dict[str, Any]
) -> None:
    _, record = first_worker
    assert one_state(record["runs"][0]) == after_adaptation
    # What the set-up is (stylegan2.device.prepare's docstring); the thread count stays the
    # process owner's (the probe sets 1, as a worker sets its configured share).
    assert after_adaptation["tf32_matmul"] and after_adaptation["tf32_cudnn"]
    assert after_adaptation["float32_matmul_precision"] == "high"
    assert after_adaptation["cudnn_benchmark"]
    assert after_adaptation["threads"] == record["before"]["threads"] == 1
    assert after_adaptation["cuda_alloc_conf"] == record["before"]["cuda_alloc_conf"]
    if after_adaptation["heap_mmaps_large_blocks"] is not None:  # glibc: the heap is kept
        assert record["before"]["heap_mmaps_large_blocks"]
        assert not after_adaptation["heap_mmaps_large_blocks"]


@pytest.mark.parametrize("engine", ["render", "edit"])
def test_a_render_or_an_edit_first_in_a_fresh_worker_runs_as_after_an_adaptation(
    engine: str,
    first_worker: tuple[Path, dict[str, Any]],
    after_adaptation: dict[str, Any],
) -> None:
    work, _ = first_worker  # its adapted.pt and latent.pt
    record = fresh_worker(work, engine)
    assert one_state(record["runs"][0]) == after_adaptation


def test_prepare_leaves_the_thread_count_unless_told() -> None:
    threads = torch.get_num_threads()
    try:
        prepare()
        prepare()  # idempotent: every engine call makes it
        assert torch.get_num_threads() == threads
        prepare(threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)

"""Snapshots (`snapshot_every`) on the tiny models of test_continue.py: kept files, their
scores, and a continuation from one equal to continuing the run that stopped there."""

from __future__ import annotations

import torch

import stylegan2
from nada import rundir
from nada.rundir import RESUME
from tests.worker.test_continue import adapt, models, same_weights  # noqa: F401 (fixture)


def test_continuing_from_a_snapshot_equals_continuing_the_run_that_stopped_there(
    tmp_path,
    models,  # noqa: F811
):
    a, events = adapt(tmp_path / "a", models, steps=6, snapshot_every=3, reselect_every=2)
    # Step 3 is kept (and sampled + scored); the final step is adapted.pt, not a snapshot.
    assert rundir.snapshot_steps(tmp_path / "a") == [3]
    assert [(e.step, e.path) for e in events if e.kind == "snapshot"] == [
        (3, rundir.snapshot_path(tmp_path / "a", 3))
    ]
    assert 3 in {e.step for e in events if e.kind == "scores"}
    assert (tmp_path / "a/samples/step_000003.png").is_file()
    snap = rundir.snapshot_path(tmp_path / "a", 3)
    assert torch.load(snap, weights_only=True)["resume"]["step"] == 3
    stylegan2.load_generator(str(snap))  # a loadable generator

    b, _ = adapt(tmp_path / "b", models, steps=3, reselect_every=2)
    assert same_weights(snap, b.checkpoint)  # sampling at step 3 changed nothing
    from_snap, _ = adapt(tmp_path / "c", models, start_from=snap, steps=5, reselect_every=2)
    from_b, _ = adapt(
        tmp_path / "d", models, start_from=tmp_path / "b" / RESUME, steps=5, reselect_every=2
    )
    assert same_weights(from_snap.checkpoint, from_b.checkpoint)
    assert not same_weights(from_snap.checkpoint, a.checkpoint)
    meta_c = stylegan2.load_generator(str(from_snap.checkpoint)).metadata
    meta_d = stylegan2.load_generator(str(from_b.checkpoint)).metadata
    assert meta_c["selected_layers"] == meta_d["selected_layers"]
    assert meta_c["steps_done"] == 5

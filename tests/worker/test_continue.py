"""Continuing a finished run (`run_adaptation(start_from=OUT/resume.pt)`) on tiny models: the
8-px random generator and the random 'nada-tiny' CLIP of test_engine.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import stylegan2
from nada.params import AdaptParams
from nada.rundir import RESUME
from tests.worker.conftest import tiny_params
from worker.checkpoints import ResumeError
from worker.engine import ModelCache, run_adaptation
from worker.events import Progress


def make_params(**changes: object) -> AdaptParams:
    return tiny_params(**{"score_latents": 2, **changes})


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def adapt(out: Path, models: ModelCache, start_from: Path | None = None, **changes):
    events: list[Progress] = []
    result = run_adaptation(
        make_params(**changes),
        out,
        device="cpu",
        on_progress=events.append,
        models=models,
        start_from=start_from,
    )
    return result, events


def weights(path: Path) -> dict[str, torch.Tensor]:
    return stylegan2.load_generator(str(path)).generator.state_dict()


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(
        torch.allclose(wa[k], wb[k], rtol=0, atol=1e-6) for k in wa
    )


def steps_logged(metrics: Path) -> list[int]:
    return [json.loads(line)["step"] for line in metrics.read_text().splitlines()]


@pytest.fixture(scope="module")
def parent(tmp_path_factory, models) -> Path:
    """A finished 2-step run (reselect_every=3: its last selection is still in force when
    the continuation starts, so the resume point must carry it)."""
    out = tmp_path_factory.mktemp("parent")
    adapt(out, models, steps=2, reselect_every=3)
    return out


def test_continuing_equals_an_uninterrupted_run_of_the_summed_steps(tmp_path, models, parent):
    whole, _ = adapt(tmp_path / "whole", models, steps=4, reselect_every=3)
    child, events = adapt(
        tmp_path / "child", models, start_from=parent / RESUME, steps=4, reselect_every=3
    )
    assert same_weights(whole.checkpoint, child.checkpoint)
    assert not same_weights(parent / "adapted.pt", child.checkpoint)  # it did train on

    # Its steps are numbered after the parent's; the log holds its own steps only; its
    # first picture is where it starts, drawn from the parent's latents.
    assert steps_logged(child.metrics) == [3, 4]
    assert [e.step for e in events if e.kind == "step"] == [3, 4]
    assert [p.name for p in child.samples] == ["step_000002.png", "step_000004.png"]
    assert (tmp_path / "child/samples/step_000002.png").read_bytes() == (
        parent / "samples/step_000002.png"
    ).read_bytes()
    assert {e.total_steps for e in events} == {4}

    meta = stylegan2.load_generator(str(child.checkpoint)).metadata
    parent_meta = stylegan2.load_generator(str(parent / "adapted.pt")).metadata
    parent_sha = hashlib.sha256((parent / "adapted.pt").read_bytes()).hexdigest()
    assert meta["continued_from"] == {"step": 2, "sha256": parent_sha}
    assert "continued_from" not in parent_meta
    assert meta["steps_done"] == 4 and meta["params"]["steps"] == 4
    # adapted.pt stays the plain generator file; resume.pt has what a continuation needs.
    assert set(torch.load(child.checkpoint, weights_only=True)) == {
        "g_ema",
        "latent_avg",
        "metadata",
    }
    resume = torch.load(tmp_path / "child" / RESUME, weights_only=True)["resume"]
    assert resume["step"] == 4 and resume["checkpoint_sha256"] == child.checkpoint_sha256

    # Continuing the continuation makes a chain, and still equals one run of the sum.
    grandchild, _ = adapt(
        tmp_path / "grandchild", models, start_from=tmp_path / "child" / RESUME, steps=5,
        reselect_every=3,
    )  # fmt: skip
    longer, _ = adapt(tmp_path / "longer", models, steps=5, reselect_every=3)
    assert same_weights(longer.checkpoint, grandchild.checkpoint)
    meta = stylegan2.load_generator(str(grandchild.checkpoint)).metadata
    assert meta["continued_from"] == {"step": 4, "sha256": child.checkpoint_sha256}


def test_a_changed_learning_rate_is_applied(tmp_path, models, parent):
    same, _ = adapt(
        tmp_path / "same", models, start_from=parent / RESUME, steps=3, reselect_every=3
    )
    faster, _ = adapt(
        tmp_path / "faster", models, start_from=parent / RESUME, steps=3, reselect_every=3, lr=0.2
    )
    before = weights(parent / "adapted.pt")

    def moved(path: Path) -> float:
        after = weights(path)
        return sum(float((after[k] - before[k]).abs().sum()) for k in before)

    # The same moments and the same gradient: Adam's step is lr times the same normalised
    # gradient, so 100x the lr moves the weights ~100x as far.
    assert moved(faster.checkpoint) > 50 * moved(same.checkpoint) > 0
    assert stylegan2.load_generator(str(faster.checkpoint)).metadata["params"]["lr"] == 0.2


def test_changed_layers_select_again_at_the_first_step(tmp_path, models, parent):
    child, _ = adapt(tmp_path / "k2", models, start_from=parent / RESUME, steps=3, layers=2)
    lines = [json.loads(line) for line in child.metrics.read_text().splitlines()]
    assert [len(line["selected_layers"]) for line in lines] == [2]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target_text": "oil painting"}, "target_text"),
        ({"seed": 4}, "seed"),
        ({"batch_size": 1}, "batch_size"),
        ({"generator": "random-16"}, "generator"),
    ],
)
def test_a_change_a_continuation_may_not_make_is_refused_by_name(
    tmp_path, models, parent, change, field
):
    with pytest.raises(ResumeError, match=field):
        adapt(tmp_path / "bad", models, start_from=parent / RESUME, steps=3, **change)
    assert not (tmp_path / "bad" / "adapted.pt").exists()


def test_a_continuation_needs_steps_beyond_the_parent(tmp_path, models, parent):
    with pytest.raises(ResumeError, match="more than that"):
        adapt(tmp_path / "none", models, start_from=parent / RESUME, steps=2)


def test_a_continuation_cannot_write_over_the_run_it_continues(tmp_path, models, parent):
    with pytest.raises(ResumeError, match="another directory"):
        adapt(parent, models, start_from=parent / RESUME, steps=3)
    assert (parent / RESUME).is_file() and (parent / "adapted.pt").is_file()


def test_a_parameter_added_since_the_parent_counts_as_its_default(tmp_path, models, parent):
    """A parent saved before a parameter existed trained with its default: continuable,
    unless the continuation's value differs."""
    older = torch.load(parent / RESUME, weights_only=True)
    del older["metadata"]["params"]["mixing"]  # 0.0, the default
    del older["metadata"]["params"]["score_latents"]  # 2 here; the default is 32
    torch.save(older, tmp_path / "older.pt")
    with pytest.raises(ResumeError, match="score_latents=32"):
        adapt(tmp_path / "refused", models, start_from=tmp_path / "older.pt", steps=3)
    child, _ = adapt(
        tmp_path / "child", models, start_from=tmp_path / "older.pt", steps=3, score_latents=32,
        reselect_every=3,
    )  # fmt: skip
    assert child.steps == 3

"""The worker measures a sample pass (progress image + scores) from the engine's progress
events (worker.events.SamplePassTimer) and the ETA it records counts the passes left: the
measurement on a scripted clock, then a real short job through worker.attempts.run_job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nada.events import Progress
from worker.events import SamplePassTimer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _event(kind: str, stage: str, step: int, sps: float | None = None) -> Progress:
    return Progress(kind=kind, stage=stage, step=step, total_steps=6, seconds_per_step=sps)


def test_a_pass_is_what_its_two_step_intervals_took_beyond_their_steps() -> None:
    """Steps of 1 s; the step-0 scoring takes 4 s; each later pass 3 s of scoring (before
    its 'step' event) and 2 s of image (after it), i.e. 5 s."""
    clock = Clock()
    timer = SamplePassTimer(clock=clock)
    seen = []

    def at(t: float, event: Progress) -> None:
        clock.now = t
        seen.append(timer.observe(event))

    at(0.0, _event("stage", "loading", 0))
    at(10.0, _event("sample", "loading", 0))
    at(14.0, _event("scores", "loading", 0))  # the first pass's scoring: 4 s
    at(14.0, _event("stage", "training", 0))
    at(15.0, _event("step", "training", 1, sps=1.0))
    at(19.0, _event("step", "training", 2, sps=1.0))  # 1 s step + 3 s scoring
    at(21.0, _event("sample", "training", 2))  # 2 s image
    at(21.0, _event("scores", "training", 2))
    at(22.0, _event("step", "training", 3, sps=1.0))  # the pass at 2 is closed: 5 s
    at(23.0, _event("step", "training", 4, sps=1.0))
    assert seen[:2] == [None, None]
    assert seen[2:8] == [4.0] * 6  # the step-0 scoring, until a training pass closes
    assert seen[8:] == [pytest.approx(5.0), pytest.approx(5.0)]


def test_a_real_job_reports_an_eta_that_includes_its_scoring(tmp_path: Path) -> None:
    from jobs import store
    from jobs.db.session import migrate, session_scope
    from jobs.settings import Settings
    from nada.params import AdaptParams, ClipSpec
    from worker.attempts import run_job
    from worker.model_cache import ModelCache

    settings = Settings(data_dir=tmp_path / "data", device="cpu", migrate_on_start=False,
                        frontend_dir=None)  # fmt: skip
    migrate(settings.db_url)
    params = AdaptParams(
        source_text="photo", target_text="sketch", generator="random-8",
        clip_models=(ClipSpec("nada-tiny:random"),), steps=6, batch_size=1, probe_batch=1,
        n_samples=1, sample_every=2, score_latents=16,
    )  # fmt: skip
    with session_scope(settings.db_url) as session:
        job_id = store.create_job(session, params=params).id
    assert run_job(job_id, settings=settings, worker_id="w", models=ModelCache()) == "succeeded"

    with session_scope(settings.db_url) as session:
        job = store.get_job(session, job_id=job_id)
        events = store.events_after(session, job_id=job_id)
        assert job.seconds_per_sample is not None and job.seconds_per_sample > 0
        wall = (job.finished_at - job.started_at).total_seconds()
    assert job.seconds_per_sample < wall
    metrics = (settings.jobs_dir / job_id / "metrics.jsonl").read_text().splitlines()
    slowest = max(json.loads(line)["seconds"] for line in metrics)
    steps = [e.data for e in events if e.kind == "progress" and "eta_seconds" in e.data]
    assert [d["step"] for d in steps] == [1, 2, 3, 4, 5, 6]
    # From the first step on (the step-0 scoring measured), each step's ETA is its steps
    # left plus its sample passes left (at 2, 4, 6) at the measured pass time.
    for d in steps:
        passes = store.sample_passes_left(
            step=d["step"], total_steps=6, sample_every=2, sampled_yet=True
        )
        assert d["seconds_per_sample"] > 0
        steps_part = d["eta_seconds"] - passes * d["seconds_per_sample"]
        # the rest is the steps left at the moving average of the steps' own seconds
        assert -0.1 <= steps_part <= (6 - d["step"]) * slowest + 0.1
    first = steps[0]
    assert first["eta_seconds"] > first["seconds_per_sample"] * 3 - 0.1  # 3 passes ahead

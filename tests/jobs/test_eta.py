"""The ETA counts the sample passes (progress images and scores) left, not only the steps:
the math (jobs/store.py), and a running and a queued job's estimate on SQLite and
PostgreSQL, as GET /jobs/{id} and the progress events give it."""

from __future__ import annotations

import pytest

from jobs import leases, store
from jobs.db.session import session_scope
from nada.params import AdaptParams

# steps 10, a sample every 4: samples at 0 (before the first step), 4, 8 and 10 (the last)
PARAMS = AdaptParams("photo", "sketch", generator="random-32", steps=10, sample_every=4)


@pytest.mark.parametrize(
    ("step", "total", "every", "sampled_yet", "passes"),
    [
        (0, 10, 4, False, 4),  # 0, 4, 8, 10
        (0, 10, 4, True, 3),  # 4, 8, 10
        (4, 10, 4, True, 2),  # 8, 10
        (8, 10, 4, True, 1),  # 10
        (10, 10, 4, True, 0),
        (0, 8, 4, True, 2),  # 4, 8: the last step is a multiple
        (3, 300, 50, True, 6),  # the defaults: 50, 100, ..., 300
        (0, 1, 5000, False, 2),  # 0 and the last
        (0, 100, None, False, 0),  # a kind without sample steps
    ],
)
def test_sample_passes_left(step: int, total: int, every: int | None, sampled_yet: bool,
                            passes: int) -> None:  # fmt: skip
    got = store.sample_passes_left(
        step=step, total_steps=total, sample_every=every, sampled_yet=sampled_yet
    )
    assert got == passes


def test_snapshot_steps_are_sample_passes_too() -> None:
    def passes(step: int, total: int, every: int, snapshots: int) -> int:
        return store.sample_passes_left(
            step=step, total_steps=total, sample_every=every, sampled_yet=True,
            snapshot_every=snapshots,
        )  # fmt: skip

    assert passes(0, 10, 4, 3) == 6  # 3, 4, 6, 8, 9, 10
    assert passes(0, 12, 4, 6) == 4  # 4, 6, 8, 12 (12 is both, and the last)
    assert passes(0, 9, 5, 3) == 4  # 3, 5, 6, 9 (the last, a multiple of 3)
    assert passes(5, 10, 100, 0) == 1  # no snapshots: the last step only


def test_seconds_left_adds_the_passes_when_measured() -> None:
    assert store.seconds_left(
        steps_left=6, passes_left=2, seconds_per_step=0.5, seconds_per_sample=30.0
    ) == pytest.approx(63.0)
    # before any pass was measured: the steps alone, as before
    assert store.seconds_left(
        steps_left=6, passes_left=2, seconds_per_step=0.5, seconds_per_sample=None
    ) == pytest.approx(3.0)


def test_running_and_queued_estimates_count_the_sample_passes(db_url: str) -> None:
    with session_scope(db_url) as s:
        running, ahead, last = (store.create_job(s, params=PARAMS).id for _ in range(3))
    with session_scope(db_url) as s:
        claim = leases.claim_job(s, job_id=running, worker_id="w", lease_seconds=30, max_attempts=3)
        assert claim is not None
    with session_scope(db_url) as s:
        assert leases.record_sample(s, job_id=running, attempt=claim.attempt, step=0)
        assert leases.record_progress(
            s, job_id=running, attempt=claim.attempt, stage="training", step=2, total_steps=10,
            seconds_per_step=0.5, seconds_per_sample=30.0, lease_seconds=30,
        )  # fmt: skip
        event = store.events_after(s, job_id=running)[-1]
    # 8 steps at 0.5 s + the passes at 4, 8 and 10 at 30 s
    assert event.data["eta_seconds"] == pytest.approx(8 * 0.5 + 3 * 30.0)
    assert event.data["seconds_per_sample"] == pytest.approx(30.0)

    with session_scope(db_url) as s:
        stats = store.queue_stats(s)
        assert (stats.running_steps_left, stats.running_passes_left) == (8, 3)
        assert stats.seconds_per_sample == pytest.approx(30.0)
        job = store.get_job(s, job_id=running)
        assert store.estimate(s, job=job, stats=stats) == (None, pytest.approx(94.0))
        # queued, second in line: the running job's 8 steps and 3 passes, the job ahead's 10
        # steps and about 10 / 4 + 2 = 4 passes, its own 10 steps and 4 passes (0, 4, 8, 10)
        queued = store.get_job(s, job_id=last)
        position, eta = store.estimate(s, job=queued, stats=stats)
    assert position == 2
    assert eta == pytest.approx((8 + 10 + 10) * 0.5 + (3 + 4 + 4) * 30.0)

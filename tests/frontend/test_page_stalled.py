"""The job page says when a running job's worker went silent (issue 22, item 8: a full
disk kept the page on `running` for minutes). The API is the stub of stub_api.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"


def _open(page, job_id: str) -> None:  # type: ignore[no-untyped-def]
    silent = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    jobs = [
        make_job("quiet", "photo", "sketch", step=7, stalled=True, heartbeat_at=silent),
        make_job("busy", "photo", "sketch", step=7, stalled=False, heartbeat_at=silent),
    ]
    stub = StubApi(jobs)
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/#/jobs/{job_id}")


def test_a_stalled_job_says_how_long_its_worker_is_silent(page) -> None:  # type: ignore[no-untyped-def]
    _open(page, "quiet")
    banner = page.locator(".banner-stalled")
    banner.wait_for()
    text = banner.inner_text()
    assert "No word from the worker for 3 min" in text
    assert "step 7" in text


def test_a_running_job_that_is_heard_from_shows_no_banner(page) -> None:  # type: ignore[no-untyped-def]
    _open(page, "busy")
    page.locator("main[data-job-status=running]").wait_for()
    assert page.locator(".banner-stalled").count() == 0
    assert page.locator(".banner").is_hidden()

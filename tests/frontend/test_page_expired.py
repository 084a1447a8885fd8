"""The job page of a job whose files retention removed (files_expired): a banner says so,
and there is no download nor a Continue card. The API is the stub of stub_api.py."""

from __future__ import annotations

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"


def test_an_expired_job_says_its_files_went(page) -> None:  # type: ignore[no-untyped-def]
    job = make_job("gone", "photo", "sketch", status="succeeded", step=300,
                   files_expired=True, resumable_expired=True, samples=[], checkpoint_url=None)  # fmt: skip
    page.route(f"{ORIGIN}/**", StubApi([job]).handle)
    page.goto(f"{ORIGIN}/#/jobs/gone")
    banner = page.locator(".banner-expired")
    banner.wait_for()
    assert "Files expired" in banner.inner_text()
    assert page.locator("[data-role=checkpoint]").is_hidden()
    assert page.locator("[data-role=continue]").is_hidden()

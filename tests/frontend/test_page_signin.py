"""The page on a service with API tokens (`nada serve` with NADA_API_TOKENS, no worker): it
asks for a token before anything else, says so when the token is wrong, and once signed in
shows the form and the jobs the token submitted, pictures and downloads included (the
cookie goes with every request); signing out asks again. Headless Debian Chromium.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import Service, running_service

pytestmark = pytest.mark.browser

ALICE = "alice-page-token-000001"


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[Service]:
    env = {"NADA_API_TOKENS": f"alice:{ALICE}"}
    with running_service(tmp_path_factory.mktemp("secured"), env=env, args=("--no-worker",)) as svc:
        yield svc


def _submit_as_alice(svc: Service) -> str:
    body = {"source_text": "photo", "target_text": "sketch", "generator": "random-32"}
    request = urllib.request.Request(
        svc.api("jobs"),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ALICE}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as res:
        return json.load(res)["id"]


def test_sign_in_then_the_page_works_and_sign_out_asks_again(page, secured):
    job_id = _submit_as_alice(secured)  # queued: this service has no worker
    page.goto(secured.url)
    dialog = page.get_by_role("dialog", name="Sign in")
    dialog.wait_for()
    token = page.get_by_label("API token")
    assert token.evaluate("el => el === document.activeElement")

    token.fill("not-a-token-of-this-service")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#signin-error")
    error.filter(has_text="not a token").wait_for()
    assert dialog.is_visible()
    assert page.context.cookies() == []  # a wrong token sets nothing

    token.fill(ALICE)
    page.get_by_role("button", name="Sign in").click()
    dialog.wait_for(state="hidden")
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] == ALICE
    assert page.evaluate("document.cookie") == ""  # the page's scripts never see it
    page.locator("#account").filter(has_text="Signed in as alice").wait_for()
    page.locator("form.job-form").wait_for()  # the schema, generators and CLIP models loaded
    row = page.locator(f".job-row[data-job-id='{job_id}']")
    row.wait_for()  # alice's job, listed through the cookie
    page.goto(f"{secured.url}#/jobs/{job_id}")
    page.wait_for_url(re.compile(r"#/jobs/"))
    page.locator(".title-row .pill[data-status=queued]").wait_for()

    page.get_by_role("button", name="Sign out").click()
    dialog.wait_for()
    assert page.context.cookies() == []

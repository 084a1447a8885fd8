"""The page on a service with API tokens (`nada serve` with NADA_API_TOKENS, no worker): it
asks for a token before anything else, says so when the token is wrong, and once signed in
shows the form and the jobs the token submitted, pictures and downloads included (the
cookie goes with every request); signing out asks again. A page of the same host on
another port (same site: the SameSite=Strict cookie goes along) cannot change anything
with that cookie. Headless Debian Chromium.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Service, free_port, running_service

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
    assert (
        cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["name"] == "nada_session"
    )
    assert ALICE not in cookie["value"]  # a session id: signing out ends it on the service
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


def _job_status(svc: Service, job_id: str) -> str:
    request = urllib.request.Request(
        svc.api(f"jobs/{job_id}"), headers={"Authorization": f"Bearer {ALICE}"}
    )
    with urllib.request.urlopen(request, timeout=30) as res:
        return json.load(res)["status"]


# Another port of 127.0.0.1: every way a page can send a POST without the service's help.
FORGERY = """<!doctype html><meta charset="utf-8"><title>forging</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{cancel}" enctype="text/plain" target="sink">
<input name='{{"x":"' value='"}}'></form>
<form id="plain" method="POST" action="{cancel}" target="sink2"></form>
<iframe name="sink2"></iframe>
<script>
const loaded = (name) => new Promise((ok) => document.querySelector(`iframe[name=${{name}}]`).addEventListener("load", ok, {{ once: true }}));
const tries = [
  loaded("sink"), loaded("sink2"),
  fetch("{cancel}", {{ method: "POST", mode: "no-cors", credentials: "include", body: "x" }}),
  fetch("{cancel}", {{ method: "POST", mode: "no-cors", credentials: "include", headers: {{ "X-Nada-Request": "1" }} }}),
  fetch("{cancel}", {{ method: "POST", credentials: "include", headers: {{ "X-Nada-Request": "1" }} }}).catch(() => "blocked"),
  fetch("{delete}", {{ method: "DELETE", mode: "no-cors", credentials: "include" }}).catch(() => "blocked"),
];
document.getElementById("form").submit();
document.getElementById("plain").submit();
Promise.allSettled(tries).then(() => {{ document.title = "done"; }});
</script>
"""


@contextlib.contextmanager
def _other_port(directory: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_port_cannot_cancel_a_signed_in_users_job(page, secured, tmp_path):
    job_id = _submit_as_alice(secured)
    page.goto(secured.url)
    page.get_by_role("dialog", name="Sign in").wait_for()
    page.get_by_label("API token").fill(ALICE)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#account").filter(has_text="Signed in as alice").wait_for()
    [cookie] = page.context.cookies()

    (tmp_path / "forge.html").write_text(
        FORGERY.format(
            cancel=secured.api(f"jobs/{job_id}/cancel"), delete=secured.api(f"jobs/{job_id}")
        )
    )
    with _other_port(tmp_path) as other:
        forger = page.context.new_page()
        forger.goto(f"{other}forge.html")
        forger.wait_for_function("document.title === 'done'")
        forger.close()
    assert _job_status(secured, job_id) == "queued"  # every try was refused
    assert page.context.cookies() == [cookie]  # and alice is still signed in

    # The page's own call (frontend/js/api.js) still works with the same cookie.
    canceled = page.evaluate(
        "id => import('./js/api.js').then(m => m.api.cancelJob(id)).then(j => j.status)", job_id
    )
    assert canceled == "canceled" and _job_status(secured, job_id) == "canceled"

"""Continuing a finished job from the page, against the real service (`nada serve` with its
local worker; the session's `service` fixture): the parent keeps a snapshot (snapshot_every),
which the samples card marks with the recommended step and offers to download; "Continue
from this step" picks it in the "Continue training" card, which refuses bad input inline,
then makes the child job from the snapshot and goes to it; parent and child link each other."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

pytestmark = pytest.mark.browser

JOB_TIMEOUT_S = 300  # a 2-step random-32 job: seconds on idle CPUs, a minute on busy ones
PARENT = {
    "source_text": "photo",
    "target_text": "sketch",
    "generator": "random-32",
    "clip_models": [{"name": "nada-tiny:random", "weight": 1}],
    "steps": 2,
    "snapshot_every": 1,
    "batch_size": 1,
    "probe_batch": 2,
    "n_samples": 1,
    "score_latents": 2,
}


def api(service, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        service.api(path), data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def wait_finished(service, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = api(service, "GET", f"jobs/{job_id}")
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish:\n{service.log_tail()}")


def test_continue_a_finished_job_from_the_page(page, service):
    parent = api(service, "POST", "jobs", PARENT)["id"]
    finished = wait_finished(service, parent)
    assert finished["status"] == "succeeded", service.log_tail()
    assert [s["step"] for s in finished["snapshots"]] == [1]
    recommended = finished["recommended_step"]
    assert recommended in (1, 2), api(service, "GET", f"jobs/{parent}/snapshots")
    before = api(service, "GET", "jobs")["count"]

    page.goto(f"{service.url}#/jobs/{parent}")
    card = page.get_by_role("region", name="Continue training")
    card.wait_for()
    assert page.get_by_label("More steps").input_value() == "100"

    # The samples card: both kept steps marked, the recommended one starred; on the
    # snapshot's step a download of its .pt, which answers.
    samples = page.locator(".samples-card")
    for step in (1, 2):
        thumb = samples.locator(".thumb", has_text=f"step {step}")
        assert thumb.get_attribute("data-snapshot") == "true"
        assert thumb.get_attribute("data-recommended") == str(step == recommended).lower()
    assert (
        f"Recommended step: {recommended}"
        in samples.locator("[data-role=recommended-step]").inner_text()
    )
    samples.get_by_role("button", name="Show step 1", exact=False).click()
    link = samples.locator("[data-role=download-step]")
    assert link.get_attribute("download").endswith("-step1.pt")
    href = link.evaluate("(a) => a.href")
    assert href.endswith(f"/jobs/{parent}/snapshots/1.pt"), href
    with urllib.request.urlopen(href, timeout=10) as res:
        assert res.headers["Content-Type"] == "application/octet-stream"
        assert res.read(2) == b"PK"  # a torch zip file
    samples.get_by_role("button", name="Continue from this step").click()
    assert page.get_by_label("From step").input_value() == "1"

    # Refused in the page, then by the service (422 under the card); nothing is made.
    error = card.locator("[data-role=continue-error]")
    page.get_by_label("More steps").fill("0")
    card.get_by_role("button", name="Continue training").click()
    assert "at least 1" in error.inner_text()
    page.get_by_label("More steps").fill("1")
    page.get_by_label("Learning rate (optional)").fill("5")
    card.get_by_role("button", name="Continue training").click()
    error.filter(has_text="lr must be").wait_for()
    assert api(service, "GET", "jobs")["count"] == before

    page.get_by_label("Learning rate (optional)").fill("")
    card.get_by_role("button", name="Continue training").click()
    page.wait_for_url(lambda url: f"#/jobs/{parent}" not in url and "#/jobs/" in url)
    child = page.url.rsplit("/", 1)[-1]
    continued_from = page.locator("[data-role=continued-from]")
    continued_from.wait_for()
    assert continued_from.locator("a").get_attribute("href") == f"#/jobs/{parent}"

    # The service's worker runs it on from the snapshot's step (1 + 1, not the parent's 2 + 1).
    done = wait_finished(service, child)
    assert (done["status"], done["step"], done["parent_id"]) == ("succeeded", 2, parent)
    assert api(service, "GET", f"jobs/{parent}")["children"] == [child]
    continued_from.locator("a").click()
    page.wait_for_url(f"**#/jobs/{parent}")
    continued_as = page.locator("[data-role=continued-as]")
    continued_as.wait_for()
    assert continued_as.locator("a").get_attribute("href") == f"#/jobs/{child}"

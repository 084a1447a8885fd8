"""The page against the real service (`nada serve`, local worker, random-32 generator,
the two-layer random CLIP nada-tiny:random): submit from the form, follow a job to the end and download its
checkpoint, see field errors, cancel a running job. Headless Debian Chromium.

NADA_SCREENSHOTS=<dir> also saves the main views there (docs/images in the README).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from nada import params as P

pytestmark = pytest.mark.browser

JOB_TIMEOUT_S = 300  # a 4-step random-32 job: ~10-60 s on 2 idle CPU cores, minutes on busy ones
SCREENSHOTS = os.environ.get("NADA_SCREENSHOTS")


def shot(page, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        if full_page:  # the sticky header belongs at the top of a whole-page picture
            page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
            page.wait_for_timeout(200)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)


def api_get(service, path: str) -> dict:
    with urllib.request.urlopen(service.api(path), timeout=10) as res:
        return json.load(res)


def open_form(page, service) -> None:
    page.goto(service.url)
    page.locator("form.job-form").wait_for()
    page.locator("details.advanced summary").click()


def fill_test_job(page, *, steps: int, sample_every: int) -> None:
    """The small, download-free configuration, entered as a user would."""
    page.get_by_role("button", name=re.compile(r"^photo\s+to\s+sketch$")).click()
    page.get_by_label("Base generator").select_option("random-32")
    page.get_by_label("Training steps").fill(str(steps))
    page.get_by_label("Sample every").fill(str(sample_every))
    page.get_by_label("Batch size").fill("1")
    page.get_by_label("Probe batch").fill("2")
    page.get_by_label("Score latents").fill("4")
    page.get_by_label("CLIP model 1 name").fill("nada-tiny:random")
    page.get_by_label("Remove CLIP model 2").click()


def submit(page) -> str:
    page.get_by_role("button", name="Start adaptation").click()
    page.wait_for_url(re.compile(r"#/jobs/[^/]+$"))
    return page.url.rsplit("/", 1)[-1]


def status_of(page) -> str | None:
    pill = page.locator(".title-row .pill")
    return pill.get_attribute("data-status") if pill.count() else None


def test_form_defaults_come_from_the_service(page, service):
    open_form(page, service)
    assert "defaults from the service" in page.locator("details.advanced summary").inner_text()
    defaults = P.AdaptParams("a", "b")
    shown = 0
    for f in dataclasses.fields(P.AdaptParams):
        if f.name not in P.RANGES:
            continue
        field = page.locator(f"form.job-form [name={f.name}]")
        assert field.count() == 1, f"no field for {f.name}"
        assert float(field.input_value()) == getattr(defaults, f.name), f.name
        assert f"default {getattr(defaults, f.name):g}" in field.locator("xpath=..").inner_text()
        shown += 1
    assert shown == len(P.RANGES)
    assert page.get_by_label("Layer selection").input_value() == defaults.selection
    assert page.get_by_label("CLIP model 1 name").input_value() == defaults.clip_models[0].name
    assert page.get_by_label("Base generator").input_value() == defaults.generator
    shot(page, "form", full_page=True)


def test_invalid_form_shows_errors_next_to_fields(page, service):
    before = api_get(service, "jobs")["count"]
    open_form(page, service)
    fill_test_job(page, steps=0, sample_every=2)
    # 1. Caught in the page: nothing is sent.
    page.get_by_role("button", name="Start adaptation").click()
    steps_error = page.locator("[data-field=steps] .field-error")
    assert steps_error.inner_text() == "steps must be 1..5000 (got 0)"
    assert page.get_by_label("Training steps").evaluate("el => el === document.activeElement")
    # 2. Caught by the service (422): an unknown CLIP model (the request's schema), then
    # an unknown generator (checked once the request is valid), each under its field.
    page.get_by_label("Training steps").fill("4")
    assert steps_error.inner_text() == ""  # typing clears the field's error
    page.get_by_label("Base generator").select_option("__other")
    page.get_by_label("Generator name").fill("ffqh-1024")
    page.get_by_label("CLIP model 1 name").fill("ViT-B-99:random")
    page.get_by_role("button", name="Start adaptation").click()
    clip_error = page.locator("[data-field=clip_models] .field-error")
    clip_error.filter(has_text="known:").wait_for()
    assert "ViT-B-99" in clip_error.inner_text() and "ViT-B-32" in clip_error.inner_text()
    assert page.get_by_label("CLIP model 1 name").get_attribute("aria-invalid") == "true"
    page.get_by_label("CLIP model 1 name").fill("ViT-B-32:random")
    page.get_by_role("button", name="Start adaptation").click()
    gen_error = page.locator("[data-field=generator] .field-error")
    gen_error.filter(has_text="known:").wait_for()
    assert "ffqh-1024" in gen_error.inner_text() and "ffhq-1024" in gen_error.inner_text()
    assert clip_error.inner_text() == ""
    shot(page, "form-errors")
    # 3. A rule only the whole request can break: the same text twice.
    page.get_by_label("Base generator").select_option("random-32")
    page.get_by_label("Target text").fill("photo")
    page.get_by_role("button", name="Start adaptation").click()
    target_error = page.locator("[data-field=target_text] .field-error")
    target_error.filter(has_text="differ").wait_for()
    assert target_error.inner_text().startswith("target_text must differ from source_text")
    assert gen_error.inner_text() == "" and clip_error.inner_text() == ""
    assert api_get(service, "jobs")["count"] == before


def test_submit_follow_finish_and_download(page, service, tmp_path, make_page):
    open_form(page, service)
    fill_test_job(page, steps=4, sample_every=2)
    job_id = submit(page)
    job = api_get(service, f"jobs/{job_id}")
    assert job["params"]["generator"] == "random-32"
    assert job["params"]["clip_models"] == [{"name": "nada-tiny:random", "weight": 1.0}]
    p = job["params"]
    assert (p["steps"], p["sample_every"], p["batch_size"], p["score_latents"]) == (4, 2, 1, 4)

    # Follow it: statuses, progress and the transport the page used, as they happen.
    seen_status, seen_progress, seen_modes = set(), set(), set()
    running_shot = False
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status = status_of(page)
        seen_status.add(status)
        seen_progress.add(
            int(
                page.locator(".progress-card [role=progressbar]").get_attribute("aria-valuenow")
                or 0
            )
        )
        seen_modes.add(page.locator(".mode").get_attribute("data-mode"))
        if (
            status == "running"
            and not running_shot
            and page.locator(".strip .thumb").count() >= 2  # a trained sample, a loss curve
        ):
            if SCREENSHOTS:
                page.wait_for_function("document.querySelector('.sample-frame img').complete")
                page.wait_for_timeout(300)  # the chart draws on the next frame
            shot(page, "job-running")
            running_shot = True
        if status in ("succeeded", "failed", "canceled"):
            break
        page.wait_for_timeout(150)
    assert status_of(page) == "succeeded", (
        f"job ended {status_of(page)}: {page.locator('.banner').inner_text()}\n{service.log_tail()}"
    )
    assert "running" in seen_status, seen_status
    assert "live" in seen_modes, f"the page never used the event stream: {seen_modes}"
    assert any(0 < p < 100 for p in seen_progress) or len(seen_progress) > 1, seen_progress

    # The finished view: progress, samples (2 and 4), the scrubber, losses, layers, params.
    assert page.locator(".step-line").inner_text().replace("\n", "").startswith("4/ 4 steps")
    page.locator(".banner-succeeded").wait_for()
    page.wait_for_function("document.querySelector('.sample-frame img').naturalWidth > 0")
    sampled = [s["step"] for s in api_get(service, f"jobs/{job_id}")["samples"]]
    assert {2, 4} <= set(sampled)  # every sample_every steps, and the last (maybe step 0 too)
    assert page.locator(".strip .thumb").count() == len(sampled)
    assert "Step 4 of 4" in page.locator(".sample-caption").inner_text()
    page.get_by_label("Sampled step", exact=True).focus()
    page.keyboard.press("Home")
    assert f"step {sampled[0]}" in page.locator(".sample-caption").inner_text().lower()
    page.wait_for_function("document.querySelector('.sample-frame img').naturalWidth > 0")
    page.get_by_role("button", name="Jump to latest").click()
    assert "latest" in page.locator(".sample-caption").inner_text()
    assert page.locator("svg.chart path.chart-line").count() >= 1
    # The scores of the finished job (step 0 and its sample steps): one chart per score.
    page.locator(".scores-card figure.score[data-score=diversity]").wait_for()
    assert page.locator(".scores-card figure.score").count() >= 4
    # Opened afresh, a finished job's loss curve still has every step (replayed from the
    # event stream; the job JSON keeps only the latest losses).
    page.reload()
    page.locator(".banner-succeeded").wait_for()
    page.wait_for_function(
        "document.querySelectorAll('[aria-labelledby=loss-heading] svg.chart circle.chart-line-0')"
        ".length === 4"
    )
    assert page.locator(".layers .chip").count() >= 1
    assert "random-32" in page.locator(".params").first.inner_text()
    shot(page, "job-succeeded", full_page=True)

    # Download through the page's link; the bytes are a loadable PyTorch checkpoint.
    link = page.locator("a[data-role=checkpoint]")
    assert link.is_visible()
    with page.expect_download() as info:
        link.click()
    path = tmp_path / "adapted.pt"
    info.value.save_as(path)
    data = path.read_bytes()
    assert data[:2] == b"PK", "a .pt written by torch.save is a zip archive"
    with urllib.request.urlopen(service.api(f"jobs/{job_id}/checkpoint"), timeout=30) as res:
        assert res.read() == data
    torch = pytest.importorskip("torch")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(checkpoint, dict) and checkpoint

    # The jobs list shows it, newest first, finished.
    page.goto(service.url + "#/jobs")
    row = page.locator(f".job-row[data-job-id='{job_id}']")
    row.wait_for()
    assert row.get_attribute("data-status") == "succeeded"
    assert page.locator(".job-row").first.get_attribute("data-job-id") == job_id
    assert "photo" in row.inner_text() and "sketch" in row.inner_text()
    if SCREENSHOTS:
        phone = make_page(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            color_scheme="dark",
        )
        phone.goto(f"{service.url}#/jobs/{job_id}")
        phone.locator(".banner-succeeded").wait_for()
        phone.wait_for_function("document.querySelector('.sample-frame img').naturalWidth > 0")
        phone.wait_for_timeout(500)
        shot(phone, "phone-job", full_page=True)


def test_cancel_a_running_job_from_the_page(page, service, make_page):
    open_form(page, service)
    fill_test_job(page, steps=5000, sample_every=1000)
    page.get_by_label("Target text").fill("zombie")
    job_id = submit(page)
    # A second tab on the jobs list watches it change without a reload.
    watcher = make_page(viewport={"width": 1366, "height": 440})
    watcher.goto(service.url + "#/jobs")
    row = watcher.locator(f".job-row[data-job-id='{job_id}']")
    row.wait_for()

    page.locator(".title-row .pill[data-status=running]").wait_for(timeout=JOB_TIMEOUT_S * 1000)
    watcher.locator(f".job-row[data-job-id='{job_id}'][data-status=running]").wait_for(
        timeout=10_000
    )
    shot(watcher, "jobs")
    page.get_by_role("button", name="Cancel job").click()
    page.locator(".title-row .pill[data-status=canceled]").wait_for(timeout=60_000)
    assert "Canceled" in page.locator(".banner-canceled").inner_text()
    assert not page.get_by_role("button", name="Cancel job").is_visible()
    assert not page.locator("a[data-role=checkpoint]").is_visible()
    assert api_get(service, f"jobs/{job_id}")["status"] == "canceled"
    watcher.locator(f".job-row[data-job-id='{job_id}'][data-status=canceled]").wait_for(
        timeout=10_000
    )
    page.goto(service.url)
    page.locator("form.job-form").wait_for()
    page.locator(f".job-row[data-job-id='{job_id}']").wait_for()
    shot(page, "home")

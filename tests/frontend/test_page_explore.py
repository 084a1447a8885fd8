"""The job view's "Explore" against the real service (`nada serve`, local workers, random-32
generator, nada-tiny:random): seeds drawn at a truncation chosen with the keyboard and shown
as the source/adapted grid; the same seeds again answered at once by the earlier render; at
strength 0 (the slider's Home) the adapted row is the base generator's own; a
style mixing grid; a video that plays in the page; a refusal of the service shown under its
field; a video through domains (base to this job's, on a fixed seed). Headless Debian Chromium.

NADA_SCREENSHOTS=<dir> also saves the section with a grid (explore-section.png).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

JOB_TIMEOUT_S = 300  # a 2-step random-32 job: seconds idle, minutes busy
SIZE = 32  # random-32's pictures
SCREENSHOTS = os.environ.get("NADA_SCREENSHOTS")


def api_get(service, path: str) -> dict:
    with urllib.request.urlopen(service.api(path), timeout=10) as res:
        return json.load(res)


def api_post(service, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        service.api(path),
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


@pytest.fixture(scope="module")
def finished_job(service) -> str:
    """A succeeded adaptation (submitted through the API: the form has its own tests)."""
    job = api_post(service, "jobs", {
        "source_text": "photo", "target_text": "sketch", "generator": "random-32",
        "clip_models": [{"name": "nada-tiny:random", "weight": 1}], "score_latents": 4,
        "steps": 2, "sample_every": 2, "batch_size": 1, "probe_batch": 2,
    })  # fmt: skip
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (job := api_get(service, f"jobs/{job['id']}"))["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job['id']} did not finish:\n{service.log_tail()}")
        time.sleep(0.5)
    assert job["status"] == "succeeded", f"{job}\n{service.log_tail()}"
    return job["id"]


def explore_section(page, service, job_id: str):
    page.goto(f"{service.url}#/jobs/{job_id}")
    page.locator(".banner-succeeded").wait_for()
    section = page.locator("section.explore-card")
    section.wait_for()
    return section


def wait_for_media(page, section, selector: str, ready: str) -> None:
    """Until `selector` in the section's result satisfies `ready` (a JS expression of el)."""
    try:
        page.wait_for_function(
            f"(() => {{ const el = document.querySelector('section.explore-card .explore-media "
            f"{selector}'); return Boolean(el) && ({ready}); }})()",
            timeout=JOB_TIMEOUT_S * 1000,
        )
    except Exception:
        failure = section.locator(".explore-failure")
        pytest.fail(
            f"no result: {section.locator('.explore-status').inner_text()!r} "
            f"{failure.inner_text() if failure.is_visible() else ''}\n{page.content()[-2000:]}"
        )


def latest_render(service, job_id: str) -> dict:
    rows = api_get(service, "jobs?kind=render&limit=1")["data"]
    assert rows and rows[0]["params"]["job_id"] == job_id
    return rows[0]


def test_render_seeds_at_a_truncation_and_see_the_grid(page, service, finished_job):
    section = explore_section(page, service, finished_job)
    assert section.get_by_role("heading", name="Explore").is_visible()
    section.get_by_label("Seeds", exact=True).fill("5, 7")
    slider = section.get_by_label(re.compile(r"^Truncation"))
    assert slider.input_value() == "0.7"  # the service's default
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert "0.60" in section.locator(".explore-truncation-value").inner_text()
    section.get_by_role("button", name="Render").click()
    wait_for_media(page, section, "img", "el.complete && el.naturalWidth > 0")
    section.get_by_role("status").filter(has_text="Done").wait_for()
    img = section.locator(".explore-media img")
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [2 * SIZE + 2] * 2
    assert "adapted" in img.get_attribute("alt")
    render = latest_render(service, finished_job)
    assert render["params"]["seeds"] == [5, 7] and render["params"]["truncation"] == 0.6
    assert render["status"] == "succeeded"
    link = section.locator("[data-role=download-png]").evaluate("a => a.href")
    assert link == service.api(f"renders/{render['id']}/render.png")
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("document.activeElement?.blur()")
        page.add_style_tag(content=".topbar { position: static; }")
        section.screenshot(path=str(Path(SCREENSHOTS) / "explore-section.png"))

    # The same request again: the earlier render, no new job.
    count = api_get(service, "jobs?kind=render")["count"]
    section.get_by_role("button", name="Render").click()
    section.get_by_role("status").filter(has_text="Done").wait_for()
    wait_for_media(page, section, "img", "el.complete && el.naturalWidth > 0")
    assert api_get(service, "jobs?kind=render")["count"] == count

    # Strength 0 (Home on the slider): the adapted row is the base generator's own, exactly.
    strength = section.get_by_label(re.compile(r"^Strength"))
    assert strength.input_value() == "1"  # the service's default
    strength.focus()
    page.keyboard.press("Home")
    assert "0.00" in section.locator(".explore-strength-value").inner_text()
    section.get_by_role("button", name="Render").click()
    section.get_by_role("status").filter(has_text="Done").wait_for()
    section.locator(".explore-caption").filter(has_text="at strength 0.00").wait_for()
    render = latest_render(service, finished_job)
    assert render["params"]["strength"] == 0 and render["status"] == "succeeded"
    with urllib.request.urlopen(service.api(f"renders/{render['id']}/render.png")) as res:
        grid = np.asarray(Image.open(io.BytesIO(res.read())).convert("RGB"))
    assert np.array_equal(grid[:SIZE], grid[SIZE + 2 :]), "strength 0 draws the base twice"

    # Style mixing: two grids (source, adapted), each with a header row and column.
    section.get_by_label("Style mixing").check()
    # random-32 has 8 W+ entries: crossover 1..7 (not 1024 px's 1..17, whatever the generator)
    crossover = section.get_by_label("Crossover")
    page.wait_for_function("el => el.max === '7'", arg=crossover.element_handle(), timeout=10_000)
    hint = section.locator("[data-field=crossover] .hint").inner_text()
    assert "1–7 for this generator (8 W+ entries)" in hint, hint
    section.get_by_label("Row seeds").fill("1")
    section.get_by_label("Column seeds").fill("2,3")
    section.get_by_role("button", name="Render").click()
    wait_for_media(page, section, "img", f"el.complete && el.naturalWidth === {3 * (SIZE + 2) - 2}")
    assert img.evaluate("el => el.naturalHeight") == 4 * (SIZE + 2) - 2
    assert latest_render(service, finished_job)["params"]["mode"] == "mix"


def test_a_video_plays_in_the_page(page, service, finished_job):
    section = explore_section(page, service, finished_job)
    section.get_by_label("Video", exact=True).check()
    assert not section.get_by_label("Seeds", exact=True).is_visible()
    section.get_by_label("Keyframe seeds").fill("1")  # one keyframe: the service refuses
    section.get_by_label("Frames per transition").fill("2")
    section.get_by_label("Frames per second").fill("4")
    section.get_by_role("button", name="Make the video").click()
    error = section.locator("[data-field=keyframes] .field-error")
    error.filter(has_text="must hold 2..8 seeds").wait_for()
    assert section.get_by_label("Keyframe seeds").get_attribute("aria-invalid") == "true"

    section.get_by_label("Keyframe seeds").fill("1, 2")
    assert error.inner_text() == ""
    section.get_by_role("button", name="Make the video").click()
    # Chromium decodes the H.264 file: its size and a duration (3 frames at 4 fps).
    wait_for_media(page, section, "video", "el.readyState >= 1 && el.videoWidth > 0")
    video = section.locator(".explore-media video")
    assert video.evaluate("el => [el.videoWidth, el.videoHeight]") == [2 * SIZE + 2, SIZE]
    assert video.evaluate("el => el.duration") > 0
    render = latest_render(service, finished_job)
    assert (render["params"]["keyframes"], render["total_steps"]) == ([1, 2], 3)
    href = section.locator("[data-role=download-mp4]").evaluate("a => a.href")
    assert href == service.api(f"renders/{render['id']}/render.mp4")

    # Through domains: seed 1 fixed while the weights move from the base to this job's domain.
    section.get_by_label("Through domains").check()
    assert not section.get_by_label("Keyframe seeds").is_visible()
    section.get_by_label("Video seeds").fill("1")
    section.get_by_role("button", name="Make the video").click()
    wait_for_media(page, section, "video", f"el.readyState >= 1 && el.videoWidth === {SIZE}")
    render = latest_render(service, finished_job)
    assert (render["params"]["mode"], render["total_steps"]) == ("domains", 3)  # 3 frames, 1 seed
    section.locator(".explore-caption").filter(has_text="3 frames at 4 fps").wait_for()

"""The first five minutes of a new user (issue 23's "Done means"), once, end to end: `nada
serve` from an empty data dir and an empty model cache on a machine that cannot download
(Hugging Face offline, its endpoint and every HTTP proxy a closed port), headless Chromium:

1. "Try it without downloads" -> Start: the job succeeds and shows its source/adapted samples;
2. its photo card, on a server without face-detector weights, says so and turns on
   "Already aligned"; a photo put through it succeeds;
3. a 2x2 sweep made in the page lands on its comparison.

Nothing in it is set through the API: every step is what a user clicks.
NADA_SCREENSHOTS=<dir> also saves the form with the preset applied there (first-job.png).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from conftest import free_port, running_service
from test_page_photo import face_png, wait_for_result
from test_page_service import shot
from test_page_sweep_form import _vary

pytestmark = pytest.mark.browser

JOB_TIMEOUT_S = 300  # the preset's 20 random-32 steps: well under a minute on idle CPU cores


def api_get(svc, path: str) -> dict:
    with urllib.request.urlopen(svc.api(path), timeout=10) as res:
        return json.load(res)


def offline_env(tmp_path) -> dict[str, str]:
    """No download can succeed, and each fails at once: Hugging Face told it is offline and
    pointed at a closed port, as is any other HTTP(S) client through the proxy variables.
    NADA_OFFLINE is not set: a new user's offline box does not say so."""
    closed = f"http://127.0.0.1:{free_port()}"
    return {
        "NADA_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def test_a_new_user_offline_trains_tries_a_photo_and_sweeps(page, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with running_service(data, env=offline_env(tmp_path)) as svc:
        assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

        # 1. The first job: one button, then Start.
        page.goto(svc.url)
        page.locator("form.job-form").wait_for()
        first = page.get_by_role("button", name="Try it without downloads")
        assert "demo of the mechanics" in page.locator(".first-job .hint").inner_text()
        first.click()
        assert page.get_by_label("Base generator").input_value() == "random-32"
        assert page.get_by_label("CLIP model 1 name").input_value() == "nada-tiny:random"
        shot(page, "first-job")  # NADA_SCREENSHOTS: docs/frontend.md
        page.get_by_role("button", name="Start adaptation").click()
        page.wait_for_url(re.compile(r"#/jobs/[^/]+$"))
        job_id = page.url.rsplit("/", 1)[-1]
        started = time.monotonic()
        banner = page.locator(".banner-succeeded, .banner-failed, .banner-canceled")
        banner.first.wait_for(timeout=JOB_TIMEOUT_S * 1000)
        job = api_get(svc, f"jobs/{job_id}")
        assert job["status"] == "succeeded", f"{job}\n{svc.log_tail()}"
        p = job["params"]
        assert (p["generator"], p["clip_models"]) == (
            "random-32",
            [{"name": "nada-tiny:random", "weight": 1.0}],
        )
        print(f"the first job took {time.monotonic() - started:.0f} s from Start")
        # Its samples (each a source row over an adapted row), the last one shown.
        sampled = [s["step"] for s in job["samples"]]
        assert sampled[-1] == p["steps"] and len(sampled) >= 3, sampled
        assert page.locator(".strip .thumb").count() == len(sampled)
        page.wait_for_function("document.querySelector('.sample-frame img').naturalWidth > 0")
        assert f"Step {p['steps']} of {p['steps']}" in page.locator(".sample-caption").inner_text()
        page.locator(".scores-card figure.score").first.wait_for()

        # 2. Its photo card: no face detector here, so "Already aligned" is on, and works.
        section = page.locator("section.photo-card")
        section.wait_for()
        note = section.locator("[data-role=align-note]")
        note.wait_for()
        assert "face detector" in note.inner_text() and "Already aligned" in note.inner_text()
        assert api_get(svc, "weights")["photo"]["align"] is False
        box = section.get_by_label("Already aligned")
        assert box.is_checked() and box.is_disabled()  # kept on: aligning would be refused
        section.locator("input[type=file]").set_input_files(face_png(tmp_path / "face.png"))
        section.get_by_label("Refinement steps").fill("2")
        section.get_by_role("button", name="Start").click()
        wait_for_result(page, section)
        section.get_by_role("status").filter(has_text="Done").wait_for()
        inv = api_get(svc, "inversions")["data"][0]
        assert (inv["status"], inv["params"]["align"]) == ("succeeded", False)

        # 3. A 2x2 sweep of the same first job, made in the form, opens its comparison.
        page.locator("a[data-nav=home]").click()
        page.locator("form.job-form").wait_for()
        page.get_by_role("button", name="Try it without downloads").click()
        page.locator("details.advanced summary").click()
        page.get_by_label("Training steps").fill("2")
        _vary(page, "Layers per step (k)", "1, 2")
        _vary(page, "Learning rate", "0.002, 0.01")
        start = page.locator(".sweep-actions button", has_text="Start")
        assert start.inner_text() == "Start 4 jobs"
        start.click()
        page.wait_for_url("**#/sweeps/*")
        sweep_id = page.url.rsplit("/", 1)[-1]
        page.locator(".compare-rows .compare-row").nth(3).wait_for(timeout=30_000)
        assert page.locator(".compare-rows .compare-name").all_inner_texts() == [
            "layers=1 · lr=0.002",
            "layers=1 · lr=0.01",
            "layers=2 · lr=0.002",
            "layers=2 · lr=0.01",
        ]
        # What the service made: the grid as typed over the form's other values.
        sweep = api_get(svc, f"sweeps/{sweep_id}")
        assert sweep["grid"] == {"layers": [1, 2], "lr": [0.002, 0.01]}
        assert sweep["base"]["generator"] == "random-32" and sweep["base"]["steps"] == 2
        assert sweep["base"]["clip_models"] == [{"name": "nada-tiny:random", "weight": 1.0}]
        # Nothing was downloaded on the way: the model cache holds no model file (a lock
        # file is left where a file was looked for: docs/models.md).
        cache = tmp_path / "cache"
        files = [f for f in cache.rglob("*") if f.is_file() and f.suffix != ".lock"]
        assert files == [], files

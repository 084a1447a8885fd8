"""A StyleGAN3 generator through the real service and the page: NVIDIA's config-T fixture
pickle uploaded (POST /generators, the limited validator child), adapted by the service's
real worker with layer selection, then in the page: its samples, *Continue training* (the
child job runs on from the parent's step), *Explore* (a seed grid through the base and the
adapted StyleGAN3), and the photo card saying photos need a StyleGAN2 generator."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "nvidia" / "sg3_t_64.pkl"
JOB_TIMEOUT_S = 300
SIZE = 64  # the fixture's pictures
NAME = "sg3-t-fixture"


def wait_finished(service, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = httpx.get(service.api(f"jobs/{job_id}"), timeout=10).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish:\n{service.log_tail()}")


def test_a_stylegan3_generator_adapts_continues_and_explores(page, service) -> None:
    listed = {g["name"] for g in httpx.get(service.api("generators"), timeout=10).json()["data"]}
    if NAME not in listed:
        res = httpx.post(
            service.api("generators"),
            data={"name": NAME},
            files={"file": ("sg3.pkl", FIXTURE.read_bytes(), "application/octet-stream")},
            timeout=120,
        )
        assert res.status_code == 201, res.text
    generators = {g["name"]: g for g in httpx.get(service.api("generators")).json()["data"]}
    assert generators[NAME]["family"] == "stylegan3"
    body = {
        "source_text": "photo", "target_text": "sketch", "generator": NAME,
        "clip_models": [{"name": "nada-tiny:random", "weight": 1}],
        "steps": 2, "sample_every": 2, "batch_size": 1, "probe_batch": 2, "layers": 2,
        "n_samples": 2, "score_latents": 4,
    }  # fmt: skip
    job = httpx.post(service.api("jobs"), json=body, timeout=30).json()
    done = wait_finished(service, job["id"])
    assert done["status"] == "succeeded", f"{done}\n{service.log_tail()}"
    assert done["selected_layers"] and all(
        name.startswith("synthesis.L") for name in done["selected_layers"]
    )
    assert [s["step"] for s in done["samples"]] == [0, 2] and done["scores"]

    page.goto(f"{service.url}#/jobs/{job['id']}")
    page.locator(".banner-succeeded").wait_for()
    sample = page.locator("img.sample-image").first
    sample.wait_for()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=sample.element_handle())

    # Photos: StyleGAN2 only, said in the card instead of a form that would fail.
    note = page.locator("[data-role=photo-family]")
    note.wait_for()
    assert "StyleGAN2 generators only" in note.inner_text()

    # Explore: seeds through the base and the adapted StyleGAN3.
    section = page.locator("section.explore-card")
    section.get_by_label("Seeds", exact=True).fill("3, 4")
    section.get_by_role("button", name="Render").click()
    page.wait_for_function(
        "(() => { const el = document.querySelector('section.explore-card .explore-media img');"
        " return Boolean(el) && el.complete && el.naturalWidth > 0; })()",
        timeout=JOB_TIMEOUT_S * 1000,
    )
    img = section.locator(".explore-media img")
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [2 * SIZE + 2] * 2

    # Continue training from the page: the child runs on from step 2.
    card = page.get_by_role("region", name="Continue training")
    page.get_by_label("More steps").fill("1")
    card.get_by_role("button", name="Continue training").click()
    page.wait_for_url(lambda url: f"#/jobs/{job['id']}" not in url and "#/jobs/" in url)
    child = page.url.rsplit("/", 1)[-1]
    finished = wait_finished(service, child)
    assert (finished["status"], finished["step"], finished["parent_id"]) == (
        "succeeded", 3, job["id"],
    ), f"{finished}\n{service.log_tail()}"  # fmt: skip
    checkpoint = httpx.get(service.api(f"jobs/{child}/checkpoint"), timeout=30)
    assert checkpoint.status_code == 200 and checkpoint.content[:2] == b"PK"  # a torch zip

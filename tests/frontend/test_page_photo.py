"""The job view's "Try it on a photo" against the real service (`nada serve`, local worker,
random-32 generator, nada-tiny:random): a photo chosen from the keyboard, inverted with
"already aligned" and 3 refinement steps, drawn by the job's adapted generator, and shown
side by side with its downloads; then the same photo tried on another finished job from
"Your photos" without a second inversion (and on the first job again: the same edit); refused
files, by the page and by the service; a running inversion canceled. A failed inversion (no
face found) is shown through the stub API: offline, the random generators cannot fail that
way. Headless Debian Chromium.

NADA_SCREENSHOTS=<dir> also saves the section with its result there (photo-section.png).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

JOB_TIMEOUT_S = 300  # a 2-step random-32 job, a 3-step inversion: seconds idle, minutes busy
GENERATOR = "random-32"
SCREENSHOTS = os.environ.get("NADA_SCREENSHOTS")
TILES = ("original", "aligned", "reconstruction", "adapted")
ALL_TILES_LOADED = """section => ['original', 'aligned', 'reconstruction', 'adapted'].every(key => {
  const img = section.querySelector(`[data-image=${key}] img`);
  return img && !img.hidden && img.complete && img.naturalWidth > 0;
})"""


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


def store_direction(service, name: str, base: str) -> None:
    """A latent edit direction of `base` as POST /directions stores it (jobs/directions.py's
    layout), placed in the service's data dir: the upload's check in its child process has
    its own test (tests/backend/test_edits_api.py)."""
    import torch

    folder = service.data_dir / "directions"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(torch.linspace(-2, 2, 512), folder / f"{name}.pt")
    meta = {"name": name, "base": base, "shape": [512], "sha256": "0" * 64}
    (folder / f"{name}.json").write_text(json.dumps(meta))


def face_png(path: Path, size: int = 96) -> Path:
    """A cartoon face, already a centred square crop (what "already aligned" means)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (70, 110, 160))
    d = ImageDraw.Draw(img)
    s = size / 96
    d.ellipse([22 * s, 14 * s, 74 * s, 84 * s], fill=(232, 190, 160))
    for x in (37, 59):
        d.ellipse([(x - 5) * s, 38 * s, (x + 5) * s, 46 * s], fill=(255, 255, 255))
        d.ellipse([(x - 2) * s, 40 * s, (x + 2) * s, 44 * s], fill=(40, 30, 30))
    d.arc([36 * s, 54 * s, 60 * s, 72 * s], 20, 160, fill=(150, 50, 60), width=max(1, round(2 * s)))
    img.save(path, "PNG")
    return path


@pytest.fixture(scope="module")
def finished_jobs(service) -> list[str]:
    """Two succeeded adaptations of the same base generator (submitted through the API: the
    form has its own tests)."""
    ids = []
    for target in ("sketch", "zombie"):
        job = api_post(
            service,
            "jobs",
            {
                "source_text": "photo",
                "target_text": target,
                "generator": GENERATOR,
                "clip_models": [{"name": "nada-tiny:random", "weight": 1}],
                "score_latents": 4,
                "steps": 2,
                "sample_every": 2,
                "batch_size": 1,
                "probe_batch": 2,
            },
        )
        ids.append(job["id"])
    deadline = time.monotonic() + 2 * JOB_TIMEOUT_S
    for job_id in ids:
        while (job := api_get(service, f"jobs/{job_id}"))["status"] in ("queued", "running"):
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} did not finish:\n{service.log_tail()}")
            time.sleep(0.5)
        assert job["status"] == "succeeded", f"{job}\n{service.log_tail()}"
    return ids


def photo_section(page, service, job_id: str):
    page.goto(f"{service.url}#/jobs/{job_id}")
    page.locator(".banner-succeeded").wait_for()
    section = page.locator("section.photo-card")
    section.wait_for()
    return section


def wait_for_result(page, section) -> None:
    try:
        page.wait_for_function(
            f"({ALL_TILES_LOADED})(document.querySelector('section.photo-card'))",
            timeout=JOB_TIMEOUT_S * 1000,
        )
    except Exception:
        failure = section.locator(".photo-failure")
        pytest.fail(
            f"no result: {section.locator('.photo-status').inner_text()!r} "
            f"{failure.inner_text() if failure.is_visible() else ''}"
        )


def href(section, role: str) -> str:
    return section.locator(f"[data-role={role}]").evaluate("a => a.href")


def test_try_a_photo_then_reuse_it_on_another_job(page, service, finished_jobs, tmp_path):
    first, second = finished_jobs
    before = api_get(service, "inversions")["count"]
    # A latent edit direction of this base (the registry's are FFHQ's): the edit sliders.
    store_direction(service, "tilt", GENERATOR)
    # Playwright subscribes to file choosers without waiting for the browser's answer: a
    # listener from the start makes sure the one below is not missed.
    page.on("filechooser", lambda chooser: None)
    section = photo_section(page, service, first)
    assert section.get_by_role("heading", name="Try it on a photo").is_visible()
    assert GENERATOR in section.locator(".photo-intro").inner_text()
    assert not section.locator(".your-photos-box").is_visible()  # nothing remembered yet

    # The drop zone's button opens the picker from the keyboard.
    photo = face_png(tmp_path / "face.png")
    choose = section.get_by_role("button", name="Choose a photo…")
    choose.focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(photo)
    assert "face.png" in section.locator(".drop-file").inner_text()
    page.wait_for_function("document.querySelector('.drop-preview').naturalWidth > 0")
    section.get_by_label("Already aligned").check()
    steps = section.get_by_label("Refinement steps")
    assert steps.input_value() == "100"
    assert "closer likeness" in section.locator("[data-field=refine_steps] .hint").inner_text()
    steps.fill("3")
    section.get_by_role("button", name="Start").click()

    wait_for_result(page, section)
    section.get_by_role("status").filter(has_text="Done").wait_for()

    listed = api_get(service, "inversions")
    assert listed["count"] == before + 1
    inv = listed["data"][0]
    assert inv["status"] == "succeeded"
    assert inv["params"]["generator"] == GENERATOR
    assert (inv["params"]["align"], inv["params"]["refine_steps"], inv["params"]["encoder"]) == (
        False,
        3,
        "auto",
    )
    base = service.api(f"inversions/{inv['id']}")
    assert href(section, "download-original") == f"{base}/photo.png"
    assert href(section, "download-aligned") == f"{base}/aligned.png"
    assert href(section, "download-reconstruction") == f"{base}/reconstruction.png"
    assert href(section, "download-latent") == f"{base}/latent.pt"
    adapted = href(section, "download-adapted")
    match = re.fullmatch(re.escape(service.api("edits/")) + r"([0-9a-f]{32})/image\.png", adapted)
    assert match, adapted
    edit = api_get(service, f"edits/{match[1]}")
    assert (edit["job_id"], edit["inversion_id"], edit["status"]) == (first, inv["id"], "succeeded")
    for key in TILES:
        alt = section.locator(f"[data-image={key}] img").get_attribute("alt")
        assert alt and len(alt) > 10, (key, alt)

    # The code downloads through the page's link and loads without unpickling code.
    with page.expect_download() as info:
        section.locator("[data-role=download-latent]").click()
    latent = tmp_path / "latent.pt"
    info.value.save_as(latent)
    torch = pytest.importorskip("torch")
    code = torch.load(latent, map_location="cpu", weights_only=True)
    assert code["w_plus"].shape[0] == 1 and code["w_plus"].shape[-1] == 512
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("document.activeElement?.blur()")
        page.add_style_tag(content=".topbar { position: static; }")  # not over the section
        section.screenshot(path=str(Path(SCREENSHOTS) / "photo-section.png"))
    first_edit = match[1]

    # The edit sliders: the photo's code moved along the direction, only the adapted picture
    # drawn again.
    edits = section.get_by_role("group", name="Edit the photo")
    edits.wait_for()
    edits.get_by_label("tilt").focus()
    for _ in range(4):  # 0 -> 2 in steps of 0.5, from the keyboard
        page.keyboard.press("ArrowRight")
    assert "tilt=2" in edits.locator("[data-role=edits-summary]").inner_text()
    edits.get_by_role("button", name="Apply edits").click()
    section.get_by_role("status").filter(has_text="with tilt=2").wait_for(
        timeout=JOB_TIMEOUT_S * 1000
    )
    wait_for_result(page, section)
    match = re.fullmatch(re.escape(service.api("edits/")) + r"([0-9a-f]{32})/image\.png",
                         href(section, "download-adapted"))  # fmt: skip
    assert match and match[1] != first_edit
    edited = api_get(service, f"edits/{match[1]}")
    assert (edited["edits"], edited["inversion_id"], edited["status"]) == (
        "tilt=2",
        inv["id"],
        "succeeded",
    )

    # Another job adapted from the same generator offers the photo: only the edit is new.
    section = photo_section(page, service, second)
    row = section.locator(f".photo-row[data-inversion-id='{inv['id']}']")
    row.wait_for()
    assert "face.png" in row.inner_text()
    row.get_by_role("button", name="Try face.png on this job").click()
    wait_for_result(page, section)
    assert href(section, "download-aligned") == f"{base}/aligned.png"
    match = re.fullmatch(
        re.escape(service.api("edits/")) + r"([0-9a-f]{32})/image\.png",
        href(section, "download-adapted"),
    )
    assert match
    edit = api_get(service, f"edits/{match[1]}")
    assert (edit["job_id"], edit["inversion_id"], edit["status"]) == (
        second,
        inv["id"],
        "succeeded",
    )
    assert api_get(service, "inversions")["count"] == before + 1

    # Back on the first job, the photo is offered too; its edit is the one made before.
    section = photo_section(page, service, first)
    section.get_by_role("button", name="Try face.png on this job").click()
    wait_for_result(page, section)
    assert href(section, "download-adapted") == service.api(f"edits/{first_edit}/image.png")
    assert api_get(service, "inversions")["count"] == before + 1


def test_refused_photos_say_why_and_create_nothing(page, service, finished_jobs, tmp_path):
    before = api_get(service, "inversions")["count"]
    section = photo_section(page, service, finished_jobs[0])
    file_input = section.locator("input[type=file]")
    file_error = section.locator("[data-field=file] .field-error")
    section.get_by_label("Already aligned").check()
    section.get_by_label("Refinement steps").fill("3")
    start = section.get_by_role("button", name="Start")

    # Caught by the page: not a picture type, too large, steps out of range.
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    file_input.set_input_files(notes)
    assert file_error.inner_text() == "the photo must be a JPEG, PNG or WebP image (got text/plain)"
    start.click()
    assert section.get_by_role("button", name="Choose a photo…").evaluate(
        "el => el === document.activeElement"
    )
    huge = tmp_path / "huge.jpg"  # sparse: a local browser gets the path, not 20 MiB of bytes
    with huge.open("wb") as f:
        f.truncate(20 * 2**20 + 1)
    file_input.set_input_files(huge)
    assert "larger than the 20 MiB limit" in file_error.inner_text()
    good = face_png(tmp_path / "ok.png")
    file_input.set_input_files(good)
    assert file_error.inner_text() == ""
    section.get_by_label("Refinement steps").fill("5000")
    start.click()
    steps_error = section.locator("[data-field=refine_steps] .field-error")
    assert steps_error.inner_text() == "refine_steps must be 0..2000 (got 5000)"
    section.get_by_label("Refinement steps").fill("3")

    # Caught by the service: a .png that is no image. Its message is shown as it is.
    fake = tmp_path / "holiday.png"
    fake.write_text("these are words, not pixels")
    file_input.set_input_files(fake)
    assert file_error.inner_text() == ""
    start.click()
    file_error.filter(has_text="refused: the photo").wait_for()
    assert "JPEG, PNG or WebP" in file_error.inner_text()
    assert not section.locator(".photo-result").is_visible()
    assert start.is_enabled()
    assert api_get(service, "inversions")["count"] == before


def test_cancel_a_running_inversion(page, service, finished_jobs, tmp_path):
    section = photo_section(page, service, finished_jobs[1])
    section.locator("input[type=file]").set_input_files(face_png(tmp_path / "slow.png"))
    section.get_by_label("Already aligned").check()
    section.get_by_label("Refinement steps").fill("2000")
    section.get_by_role("button", name="Start").click()
    section.locator(".photo-steps").filter(
        has_text=re.compile(r"^[1-9]\d* / 2000 refinement steps")
    ).wait_for(timeout=JOB_TIMEOUT_S * 1000)
    assert "refining" in section.get_by_role("status").inner_text()
    assert section.locator(".photo-run [role=progressbar]").is_visible()
    start = section.locator(".photo-form button[type=submit]")
    assert start.is_disabled() and start.inner_text() == "Working…"
    section.get_by_role("button", name="Cancel", exact=True).click()
    section.get_by_role("status").filter(has_text="canceled").wait_for(timeout=60_000)
    inv = api_get(service, "inversions")["data"][0]
    assert inv["status"] == "canceled" and inv["params"]["refine_steps"] == 2000
    assert start.is_enabled() and start.inner_text() == "Start"
    assert not section.get_by_role("button", name="Cancel", exact=True).is_visible()
    assert section.locator(f".photo-row[data-inversion-id='{inv['id']}']").count() == 0


# ---- a failed inversion, through the stub API -------------------------------------------------


class PhotoStub(StubApi):
    """The stub, plus an inversion that fails the way a photo without a face does."""

    def __init__(self, jobs: list[dict], error: dict | None = None):
        super().__init__(jobs)
        self.error = error or {"code": "invalid_input", "message": "no face found in the photo"}
        self.inversions: dict[str, dict] = {}
        self.edits_requested = 0

    def handle(self, route) -> None:
        req = route.request
        path = req.url.split("/api/v1/", 1)[-1].split("?")[0]
        if path == "inversions" and req.method == "POST":
            inv = make_job(
                "ab" * 16,
                "",
                "",
                status="failed",
                step=0,
                total=100,
                kind="invert",
                params={
                    "generator": "ffhq-1024",
                    "encoder": "auto",
                    "align": True,
                    "refine_steps": 100,
                },
                error=self.error,
                photo_url=f"/api/v1/inversions/{'ab' * 16}/photo.png",
                aligned_url=None,
                reconstruction_url=None,
                latent_url=None,
                checkpoint_url=None,
                samples=[],
            )
            self.inversions[inv["id"]] = inv
            return self._json(route, inv, 202)
        if path.startswith("inversions/"):
            parts = path.split("/")
            inv = self.inversions.get(parts[1])
            if inv is None:
                return self._json(route, {"detail": "not found"}, 404)
            if len(parts) == 2:
                return self._json(route, inv)
            if parts[2] == "photo.png":
                from stub_api import sample_png

                return route.fulfill(status=200, content_type="image/png", body=sample_png(0))
        if path.endswith("/edits"):
            self.edits_requested += 1
        return super().handle(route)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("invalid_input", "no face found in the photo"),
        ("model_unavailable", "the face detector's weights are not on this server"),
    ],
)
def test_a_photo_without_a_face_says_so(page, tmp_path, code, message):
    """No face found, or no face detector on this server: the failure says so and offers
    "Already aligned", which needs neither; no absent part of the message shows as "null"."""
    job = make_job("job1", "photo", "sketch", status="succeeded", step=300, kind="adapt")
    stub = PhotoStub([job], error={"code": code, "message": message})
    page.route("http://nada.test/**", stub.handle)
    page.goto("http://nada.test/#/jobs/job1")
    section = page.locator("section.photo-card")
    section.wait_for()
    section.locator("input[type=file]").set_input_files(face_png(tmp_path / "me.png"))
    section.get_by_role("button", name="Start").click()
    failure = section.get_by_role("alert").filter(has_text=message)
    failure.wait_for()
    assert f"({code})" in failure.inner_text()
    assert "Already aligned" in failure.inner_text()  # what to do about it
    assert "null" not in failure.inner_text()
    assert "failed" in section.get_by_role("status").inner_text()
    assert stub.edits_requested == 0
    # A failed inversion is not offered under "Your photos".
    assert page.evaluate("localStorage.getItem('nada.photos.v1')") in (None, "[]")

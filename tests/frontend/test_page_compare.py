"""The comparison view (frontend/js/compare.js): a sweep or hand-picked jobs side by side.

Against the real service: a 2-job sweep (random-32, nada-tiny:random, 2 steps) runs to the
end and its comparison shows both rows, moves with the shared-step slider and sorts by a
score. Against the stub API (jobs with canned samples and scores, so every case is there
on demand): sorting, the slider's "latest before" and "not reached" rows, both downloads,
and the way in from the jobs list.

NADA_SCREENSHOTS=<dir> also saves the sweep's comparison there (compare.png in the README).
"""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.request
from pathlib import Path

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"
SCREENSHOTS = os.environ.get("NADA_SCREENSHOTS")
SWEEP_TIMEOUT_S = (
    600  # two 2-step random-32 jobs, one after the other: ~1 min idle, minutes on busy CPUs
)


# ---- the stub: three finished jobs of one prompt, differing in layers and lr -----------


def _scores(direction: float, last: int) -> list[dict]:
    """Measured every 100 steps up to `last`; the final direction is `direction`."""
    return [
        {
            "step": s,
            "values": {
                "direction": round(direction * s / last, 4),
                "target": 0.01 * s / last,
                "content": round(1 - direction * s / last, 4),
                "diversity": 0.9,
                "loss": round(1 - direction, 4),
            },
        }
        for s in range(0, last + 1, 100)
    ]


def _jobs() -> list[dict]:
    jobs = []
    for job_id, layers, lr, direction, status, step, minutes in (
        ("j1", 3, 0.002, 0.20, "succeeded", 300, 3),
        ("j2", 6, 0.002, 0.50, "succeeded", 300, 2),
        ("j3", 9, 0.01, 0.35, "canceled", 200, 1),  # stopped early: no sample past step 200
    ):
        job = make_job(
            job_id,
            "photo",
            "sketch",
            status=status,
            step=step,
            total=300,
            minutes_ago=minutes,
            scores=_scores(direction, step),
            sweep_id="s" * 32,
        )
        job["params"].update(layers=layers, lr=lr)
        jobs.append(job)
    queued = make_job("q1", "photo", "oil painting", status="queued", minutes_ago=0.5)
    queued["params"]["seed"] = 7  # other latents than the rest
    return [*jobs, queued]  # fmt: skip


class SweepStub(StubApi):
    """The stub API plus GET /sweeps[/{id}] over the same jobs (j1..j3 make sweep 's'*32)."""

    def handle(self, route) -> None:
        path = route.request.url.split("/api/v1/", 1)[-1]
        if path.startswith("sweeps"):
            members = [j for j in self.jobs.values() if j.get("sweep_id")]
            sweep = {
                "id": "s" * 32, "count": len(members), "base": {"source_text": "photo"},
                "grid": {"layers": [3, 6, 9]}, "varying": ["layers"], "status": {"succeeded": 3},
                "done": True, "jobs": members, "created_at": members[0]["created_at"],
            }  # fmt: skip
            self.requests.append(f"{route.request.method} {path}")
            listing = path == "sweeps" or path.startswith("sweeps?")
            body = {"data": [sweep], "count": 1} if listing else sweep
            return route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
        return super().handle(route)


def _open(page, hash_: str) -> SweepStub:
    stub = SweepStub(_jobs())
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/{hash_}")
    return stub


def grid_labels(page) -> list[str]:
    return page.locator(".compare-rows .compare-name").all_inner_texts()


def table_labels(page) -> list[str]:
    return page.locator(".compare-table tbody th").all_inner_texts()


def row_srcs(page) -> dict[str, str]:
    return {
        r.get_attribute("data-job-id"): r.locator("img").get_attribute("src")
        for r in page.locator(".compare-rows .compare-row").all()
    }


def wait_for_images(page) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('.compare-grid img')].filter((i) => i.offsetParent)"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )


def test_sorting_by_a_score_reorders_grid_and_table(page):
    _open(page, "#/compare?jobs=j1,j2,j3")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    # Labelled by what differs (layers and lr), in the order the address named them.
    assert grid_labels(page) == ["layers=3 · lr=0.002", "layers=6 · lr=0.002", "layers=9 · lr=0.01"]
    assert table_labels(page) == grid_labels(page)
    header = page.locator(".compare-table th[data-key='score:direction']")
    assert header.get_attribute("aria-sort") == "none"

    page.get_by_role("button", name="direction", exact=True).click()  # the better end first
    assert header.get_attribute("aria-sort") == "descending"
    best_first = ["layers=6 · lr=0.002", "layers=9 · lr=0.01", "layers=3 · lr=0.002"]
    assert grid_labels(page) == best_first and table_labels(page) == best_first
    page.get_by_role("button", name="direction", exact=True).click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert grid_labels(page) == best_first[::-1] and table_labels(page) == best_first[::-1]
    # Another column takes over the sort; the first one is unsorted again.
    page.get_by_role("button", name="loss", exact=True).click()
    assert header.get_attribute("aria-sort") == "none"
    loss = page.locator(".compare-table th[data-key='score:loss']")
    assert loss.get_attribute("aria-sort") == "ascending"
    assert grid_labels(page)[0] == "layers=6 · lr=0.002"  # the lowest loss


def test_the_shared_step_slider_moves_every_job(page):
    _open(page, "#/compare?jobs=j1,j2,j3")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    # Default: the last step of any job (300); j3 stopped at 200 and shows that, marked.
    assert page.locator(".compare-step-text").inner_text().startswith("Step 300")
    srcs = row_srcs(page)
    assert srcs["j1"].endswith("/jobs/j1/samples/300.png")
    assert srcs["j2"].endswith("/jobs/j2/samples/300.png")
    assert srcs["j3"].endswith("/jobs/j3/samples/200.png")
    j3_step = page.locator(".compare-row[data-job-id=j3] .compare-step")
    assert j3_step.get_attribute("data-exact") == "false"
    assert "latest before 300" in j3_step.inner_text()
    # Same latents: the source row is drawn once, above the rows, cropped to the top half.
    assert page.locator(".compare-source").is_visible()
    assert page.locator(".compare-rows .compare-frame[data-half=adapted]").count() == 3
    wait_for_images(page)

    slider = page.get_by_label("Training step of every job")
    slider.focus()
    page.keyboard.press("Home")  # the first sampled step, 50
    assert page.locator(".compare-step-text").inner_text().startswith("Step 50")
    for job_id, src in row_srcs(page).items():
        assert src.endswith(f"/jobs/{job_id}/samples/50.png"), (job_id, src)
    assert j3_step.get_attribute("data-exact") == "true"
    wait_for_images(page)
    page.keyboard.press("ArrowRight")
    assert all(s.endswith("/samples/100.png") for s in row_srcs(page).values())
    # The scores follow the slider where a job measured there (step 100), in the table.
    cell = page.locator(".compare-table tr[data-job-id=j2] td[data-score=direction]")
    assert cell.inner_text() == f"{0.5 * 100 / 300:.3f}"
    page.keyboard.press("End")
    assert cell.inner_text() == "0.500"


def test_a_job_that_has_not_reached_the_step_says_so(page):
    _open(page, "#/compare?jobs=j1,q1")
    page.locator(".compare-row[data-job-id=q1]").wait_for()
    row = page.locator(".compare-row[data-job-id=q1]")
    assert row.locator(".compare-step").inner_text() == "not reached"
    assert row.locator(".compare-missing").is_visible() and row.locator("img").is_hidden()
    # Other latents (seed 7): no shared source row; each job shows its whole sample.
    assert page.locator(".compare-source").is_hidden()
    frame = page.locator(".compare-row[data-job-id=j1] .compare-frame")
    assert frame.get_attribute("data-half") == "both"
    assert "seed=7" in row.locator(".compare-name").inner_text()


def test_csv_download_has_one_line_per_job_with_the_scores(page, tmp_path):
    _open(page, "#/compare?jobs=j1,j2,j3")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    assert info.value.suggested_filename == "compare-3-jobs.csv"
    path = tmp_path / "compare.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["id"] for r in rows] == ["j1", "j2", "j3"]
    assert list(rows[0]) == ["id", "layers", "lr", "status", "steps_run",
                             "direction", "target", "content", "diversity", "loss"]  # fmt: skip
    by_id = {r["id"]: r for r in rows}
    assert float(by_id["j2"]["direction"]) == 0.5 and float(by_id["j3"]["direction"]) == 0.35
    assert by_id["j3"]["steps_run"] == "200" and by_id["j1"]["layers"] == "3"
    assert by_id["j1"]["status"] == "succeeded" and by_id["j3"]["status"] == "canceled"


def test_contact_sheet_downloads_one_png_of_every_row(page, tmp_path):
    from PIL import Image

    _open(page, "#/compare?jobs=j1,j2,j3")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download contact sheet (PNG)").click()
    assert info.value.suggested_filename == "compare-3-jobs-step-300.png"
    path = tmp_path / "sheet.png"
    info.value.save_as(path)
    with Image.open(path) as sheet:
        assert sheet.format == "PNG"
        width, height = sheet.size
        # The stub's samples are 4 tiles of 64 px: a title, the source row and three
        # adapted rows of 64 px with their labels.
        assert width >= 256 and height >= 4 * 64
        # Drawn, not blank: the rows' images bring many colours.
        assert len(sheet.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_compare_selected_from_the_jobs_list(page):
    _open(page, "#/jobs")
    page.locator(".job-row[data-job-id=j1]").wait_for()
    button = page.get_by_role("button", name="Compare selected (0)")
    assert button.is_disabled()
    page.get_by_label("Select photo to sketch (j1) for comparison").check()
    page.get_by_label("Select photo to sketch (j3) for comparison").check()
    page.get_by_role("button", name="Compare selected (2)").click()
    page.wait_for_url(f"{ORIGIN}/#/compare?jobs=j1,j3")
    page.locator(".compare-rows .compare-row").nth(1).wait_for()
    assert grid_labels(page) == ["layers=3 · lr=0.002", "layers=9 · lr=0.01"]
    # A job of a sweep links to its sweep's comparison, labelled by the swept parameter.
    page.go_back()
    page.locator(".job-row[data-job-id=j2] a.sweep-link").click()
    page.wait_for_url(f"{ORIGIN}/#/sweeps/{'s' * 32}")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    assert grid_labels(page) == ["layers=3 · lr=0.002", "layers=6 · lr=0.002", "layers=9 · lr=0.01"]
    page.goto(f"{ORIGIN}/#/sweeps")
    page.locator(f".sweep-row[data-sweep-id='{'s' * 32}']").wait_for()
    assert "layers × 3" in page.locator(".sweep-row").inner_text()


def test_the_comparison_fits_a_phone(make_page, page_errors):
    page = make_page(is_mobile=True, has_touch=True, viewport={"width": 390, "height": 844})
    _open(page, "#/compare?jobs=j1,j2,j3")
    page.locator(".compare-rows .compare-row").nth(2).wait_for()
    wait_for_images(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the comparison scrolls sideways by {overflow}px on a phone"
    # One column: each row's label sits above its images; the header's links stay one line.
    label = page.locator(".compare-row[data-job-id=j1] .compare-label").bounding_box()
    frame = page.locator(".compare-row[data-job-id=j1] .compare-frame").bounding_box()
    assert frame["y"] >= label["y"] + label["height"] - 1
    heights = page.locator(".topnav a").evaluate_all("els => els.map((e) => e.offsetHeight)")
    assert max(heights) < 2 * min(heights), heights
    assert not page_errors.uncaught


# ---- the real service ------------------------------------------------------------------


def _post(service, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        service.api(path), data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)


def _get(service, path: str) -> dict:
    with urllib.request.urlopen(service.api(path), timeout=10) as res:
        return json.load(res)


def _worker_log(service) -> str:
    """The service's log without the polling requests."""
    lines = service.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if '"GET /api/v1/' not in line)[-4000:]


def test_a_sweep_compares_in_the_page_as_it_runs(page, service):
    base = {
        "source_text": "photo", "target_text": "sketch", "generator": "random-32",
        "clip_models": [{"name": "nada-tiny:random", "weight": 1.0}],
        "steps": 2, "sample_every": 1, "batch_size": 1, "probe_batch": 2, "score_latents": 4,
        "snapshot_every": 1,
    }  # fmt: skip
    sweep = _post(service, "sweeps", {"base": base, "grid": {"layers": [2, 4]}})
    # Opened at once: the view re-reads the sweep while its jobs are queued or running, and
    # its rows reach their end without a reload.
    page.goto(f"{service.url}#/sweeps/{sweep['id']}")
    page.locator(".compare-rows .compare-row").nth(1).wait_for()
    assert grid_labels(page) == ["layers=2", "layers=4"]
    page.wait_for_function(
        "(() => { const s = [...document.querySelectorAll('.compare-rows .pill')]"
        ".map((p) => p.dataset.status);"
        " return s.length === 2 && s.every((x) => ['succeeded', 'failed', 'canceled'].includes(x)); })()",
        timeout=SWEEP_TIMEOUT_S * 1000,
    )
    sweep = _get(service, f"sweeps/{sweep['id']}")
    statuses = [j["status"] for j in sweep["jobs"]]
    assert statuses == ["succeeded", "succeeded"], f"{statuses}\n{_worker_log(service)}"
    steps = sorted({s["step"] for j in sweep["jobs"] for s in j["samples"]})
    assert {1, 2} <= set(steps)
    assert page.locator(".compare-step-text").inner_text().startswith("Step 2")
    assert page.locator(".compare-source").is_visible()  # same seed, generator, n_samples
    wait_for_images(page)
    # Each row's image is cropped to the adapted half: a frame one image-row tall.
    frame = page.locator(".compare-row[data-job-id] .compare-frame").first.bounding_box()
    assert 3.5 < frame["width"] / frame["height"] < 4.5, frame  # 4 tiles of 32 px + gutters
    slider = page.get_by_label("Training step of every job")
    slider.focus()
    page.keyboard.press("Home")
    first = steps[0]
    for job_id, src in row_srcs(page).items():
        assert src.endswith(f"/jobs/{job_id}/samples/{first}.png"), src
    wait_for_images(page)
    page.keyboard.press("End")
    for job_id, src in row_srcs(page).items():
        assert src.endswith(f"/jobs/{job_id}/samples/2.png"), src
    # Both jobs measured scores; sorting by one orders the rows by its final values.
    page.get_by_role("button", name="diversity", exact=True).click()
    final = {j["id"]: j["scores"][-1]["values"]["diversity"] for j in sweep["jobs"]}
    expected = sorted(final, key=lambda i: -final[i])
    assert list(row_srcs(page)) == expected
    # Each job's recommended step (its snapshot at 1 or its final step): the table shows
    # the job JSON's, and its button moves the shared slider there.
    recommended = {j["id"]: j["recommended_step"] for j in sweep["jobs"]}
    for job_id, step in recommended.items():
        cell = page.locator(
            f".compare-table tr[data-job-id='{job_id}'] [data-role=recommended-step]"
        )
        assert cell.inner_text() == ("—" if step is None else f"{step} ★")
    job_id, step = next((i, s) for i, s in recommended.items() if s is not None)
    slider.focus()
    page.keyboard.press("Home" if step == steps[-1] else "End")
    page.locator(
        f".compare-table tr[data-job-id='{job_id}'] [data-role=recommended-step] button"
    ).click()
    assert page.locator(".compare-step-text").inner_text().startswith(f"Step {step}")
    wait_for_images(page)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
        page.wait_for_timeout(200)  # the sticky header belongs at the top of the picture
        page.screenshot(path=str(Path(SCREENSHOTS) / "compare.png"), full_page=True)

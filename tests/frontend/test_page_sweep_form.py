"""Sweeps from the page (frontend/js/form.js, "Sweep"): the parameters to vary and their
values, the job count before anything is sent, POST /sweeps with the form's other values as
`base`, the service's 422 on the grid entry it names, then the sweep's comparison. Also the
comparison's short labels for example images, the nav following the view, the sweeps list's
empty state and the phone header.

Against the stub API (stub_api.py records the POST /sweeps body). The same 2x2 sweep on the
real `nada serve` and worker is made once, offline, by test_first_five_minutes.py.
"""

from __future__ import annotations

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"


def _open(page, jobs=(), hash_: str = "") -> StubApi:
    stub = StubApi(list(jobs))
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/{hash_}")
    return stub


def _vary(page, label: str, values: str) -> None:
    """Add a sweep row for the parameter labelled `label` with `values`."""
    page.get_by_role("button", name="Add a parameter to vary").click()
    row = page.locator(".sweep-row").last
    row.get_by_label("Parameter to vary").select_option(label=label)
    row.get_by_label("Values").fill(values)


def _fill_prompts(page, source: str, target: str) -> None:
    page.locator("form.job-form").wait_for()
    page.locator("input[name=target_text]").fill(target)
    page.locator("input[name=source_text]").fill(source)


def test_a_2x2_sweep_is_made_in_the_page_and_opens_its_comparison(page):
    stub = _open(page)
    _fill_prompts(page, "photo", "sketch")
    page.locator("details.advanced summary").click()
    _vary(page, "Layers per step (k)", "3, 6")
    start = page.locator(".sweep-actions button", has_text="Start")
    assert start.inner_text() == "Start 2 jobs"
    page.get_by_role("button", name="Add a parameter to vary").click()
    assert start.inner_text() == "Start 0 jobs" and start.is_disabled()  # no values yet
    page.locator(".sweep-row").last.get_by_label("Parameter to vary").select_option(
        label="Learning rate"
    )
    page.locator(".sweep-row").last.get_by_label("Values").fill("0.002,0.01")
    # The count before anything is sent: the product of the value counts.
    assert start.inner_text() == "Start 4 jobs"
    assert page.locator(".sweep-count").inner_text() == "2 × 2 = 4 jobs"
    assert not stub.sweeps_created
    page.get_by_label("Training steps").fill("120")
    start.click()
    page.wait_for_url("**#/sweeps/sweep1")
    body = stub.sweeps_created[0]
    assert body["grid"] == {"layers": [3, 6], "lr": [0.002, 0.01]}
    base = body["base"]
    assert base["source_text"] == "photo" and base["target_text"] == "sketch"
    assert base["steps"] == 120
    assert "layers" not in base and "lr" not in base  # the varied ones are the grid's only
    # The comparison of its four jobs, labelled by what varies.
    page.locator(".compare-rows .compare-row").nth(3).wait_for()
    labels = page.locator(".compare-rows .compare-name").all_inner_texts()
    assert labels == [
        "layers=3 · lr=0.002",
        "layers=3 · lr=0.01",
        "layers=6 · lr=0.002",
        "layers=6 · lr=0.01",
    ]
    assert page.locator("[data-nav=sweeps]").get_attribute("aria-current") == "page"


def test_prompts_are_separated_by_bars_and_bad_values_are_caught_here(page):
    stub = _open(page)
    _fill_prompts(page, "photo", "sketch")
    page.locator("details.advanced summary").click()
    _vary(page, "Target text", "sketch, pencil | oil painting | watercolor")
    start = page.locator(".sweep-actions button", has_text="Start")
    assert start.inner_text() == "Start 3 jobs"
    _vary(page, "Layers per step (k)", "3, lots")
    start.click()
    error = page.locator(".sweep-row[data-param=layers] .field-error")
    assert "lots" in error.inner_text()
    assert not stub.sweeps_created  # refused before sending


def test_a_422_from_the_service_shows_on_the_grid_entry_it_names(page):
    stub = _open(page)
    _fill_prompts(page, "photo", "sketch")
    page.locator("details.advanced summary").click()
    _vary(page, "Layers per step (k)", "3")
    _vary(page, "Training steps", "100, 4999")  # the stub refuses 4999 as grid.steps
    page.locator(".sweep-actions button", has_text="Start").click()
    error = page.locator("[data-error-for='grid.steps']")
    error.wait_for()
    page.wait_for_function("document.querySelector(\"[data-error-for='grid.steps']\").textContent")
    assert error.inner_text() == "steps must be 1..4998 here"
    assert page.locator(".sweep-row[data-param=layers] .field-error").inner_text() == ""
    assert len(stub.sweeps_created) == 1
    assert page.url.endswith("/")  # still on the form


def test_the_sweeps_list_says_how_to_start_one(page):
    _open(page, hash_="#/sweeps")
    empty = page.locator(".jobs-panel .empty")
    empty.wait_for()
    assert "`" not in empty.inner_text()
    assert "New job" in empty.inner_text()


def test_the_nav_follows_the_view(page):
    jobs = [make_job("a", "photo", "sketch"), make_job("b", "photo", "oil painting")]
    _open(page, jobs, "#/compare?jobs=a,b")
    page.locator(".compare-rows .compare-row").nth(1).wait_for()
    # Jobs picked in the jobs list: the Jobs link is current, not Sweeps.
    assert page.locator("[data-nav=jobs]").get_attribute("aria-current") == "page"
    assert page.locator("[data-nav=sweeps]").get_attribute("aria-current") is None
    page.goto(f"{ORIGIN}/#/sweeps")
    page.locator(".jobs-panel").wait_for()
    assert page.locator("[data-nav=sweeps]").get_attribute("aria-current") == "page"
    assert page.locator("[data-nav=jobs]").get_attribute("aria-current") is None


def test_image_targets_are_labelled_by_their_count(page):
    one, three = make_job("a", "photo", "sketch"), make_job("b", "photo", "sketch")
    one["params"]["target_images"] = ["a" * 64]
    three["params"]["target_images"] = ["b" * 64, "c" * 64, "d" * 64]
    _open(page, [one, three], "#/compare?jobs=a,b")
    page.locator(".compare-rows .compare-row").nth(1).wait_for()
    labels = page.locator(".compare-rows .compare-name").all_inner_texts()
    assert labels == ["target_images=1 image", "target_images=3 images"]
    table = page.locator(".compare-table tbody th").all_inner_texts()
    assert table == labels


@pytest.mark.parametrize("width", [360, 375, 390])
def test_the_phone_header_does_not_overlap(make_page, width):
    page = make_page(is_mobile=True, has_touch=True, viewport={"width": width, "height": 700})
    _open(page)
    page.locator("form.job-form").wait_for()
    brand = page.locator(".brand").bounding_box()
    name = page.locator(".brand-name").bounding_box()
    link = page.locator("[data-nav=home]").bounding_box()

    def overlap(a, b) -> bool:
        return not (
            a["x"] + a["width"] <= b["x"]
            or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"]
            or b["y"] + b["height"] <= a["y"]
        )

    assert not overlap(brand, link), (brand, link)
    assert not overlap(name, link), (name, link)
    # The name fits inside the brand (it used to overflow its shrunk box under the nav).
    assert name["x"] + name["width"] <= brand["x"] + brand["width"] + 0.5
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


# The same 2x2 sweep on a real service and worker is made by
# tests/frontend/test_first_five_minutes.py (offline, from the preset): one real run of it.

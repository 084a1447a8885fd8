"""Browser tests of what the real service cannot show on demand: the page under a path
prefix, hostile prompt text, a phone-sized screen, the keyboard. The API here is a stub
(stub_api.py) answering through Playwright's request routing; no network, no server."""

from __future__ import annotations

import dataclasses
import re

import pytest
from stub_api import StubApi, make_job

from nada import params as P

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def _jobs() -> list[dict]:
    return [
        make_job(
            "run1",
            "face",
            "Pixar cartoon",
            status="running",
            step=120,
            total=300,
            eta_seconds=95,
            selected_layers=["convs.3", "convs.4", "to_rgbs.2"],
            losses={"total": 0.8, "direction": 0.8},
            checkpoints=[{"step": 100, "url": "/api/v1/jobs/run1/checkpoints/100.pt"}],
        ),
        make_job(
            "hostile",
            "face",
            HOSTILE,
            status="failed",
            step=40,
            total=300,
            minutes_ago=5,
            error={"code": "engine_error", "message": f"bad prompt {HOSTILE}"},
        ),
        make_job(
            "done1",
            "photo",
            "sketch",
            status="succeeded",
            step=300,
            total=300,
            minutes_ago=30,
            domain_url="/api/v1/jobs/done1/domain",  # a modulation job's domain file
            scores=[
                {
                    "step": s,
                    "values": {
                        "direction": 0.05 * i,
                        "target": 0.01 * i,
                        "content": 1 - 0.05 * i,
                        "diversity": 1 - 0.1 * i,
                        "loss": 0.9 - 0.1 * i,
                        "direction/ViT-B-32": 0.1,
                    },
                }
                for i, s in enumerate((0, 100, 200, 300))
            ],
        ),  # fmt: skip
    ]


def _open(page, prefix: str = "/", hash_: str = "") -> StubApi:
    stub = StubApi(_jobs(), prefix=prefix)
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}{stub.prefix}{hash_}")
    return stub


def test_works_under_a_path_prefix(page):
    stub = _open(page, prefix="/tools/nada/", hash_="#/jobs/run1")
    page.locator(".sample-frame img").wait_for()
    page.wait_for_function("document.querySelector('.sample-frame img').naturalWidth > 0")
    # The stub refuses the event stream: the page says so and polls instead.
    page.locator(".mode[data-mode=polling]").wait_for()
    api_calls = [r for r in stub.requests if "/api/v1/" in r]
    assert api_calls and all(" /tools/nada/api/v1/" in r for r in api_calls), api_calls
    # Sample URLs arrive server-absolute (/api/v1/...) and are re-rooted at the prefix.
    src = page.locator(".sample-frame img").get_attribute("src")
    assert src.startswith(f"{ORIGIN}/tools/nada/api/v1/jobs/run1/samples/")
    # Intermediate checkpoints, when the job lists them, are links too.
    link = page.locator("a[data-role=intermediate-checkpoint]")
    assert link.inner_text() == "Step 100"
    assert link.get_attribute("href") == f"{ORIGIN}/tools/nada/api/v1/jobs/run1/checkpoints/100.pt"


def test_prompts_and_errors_are_shown_as_text(page):
    _open(page, hash_="#/jobs/hostile")
    banner = page.locator(".banner-failed")
    banner.wait_for()
    assert HOSTILE in banner.inner_text()
    assert HOSTILE in page.locator("h1").inner_text()
    page.goto(f"{ORIGIN}/#/jobs")
    page.locator(".job-row[data-job-id=hostile]").wait_for()
    assert HOSTILE in page.locator(".job-row[data-job-id=hostile]").inner_text()
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_similar_jobs_rows_tell_them_apart(page):
    """Ten "face → Shrek" rows looked identical: each row shows a short id and the
    parameters its job changed from GET /params' defaults."""
    jobs = [
        make_job("a1b2c3d4e5f60718", "face", "Shrek", status="succeeded", step=300, minutes_ago=9),
        make_job("f0e1d2c3b4a59687", "face", "Shrek", status="succeeded", step=300, minutes_ago=8),
    ]
    jobs[1]["params"].update(lr=0.01, seed=3)
    stub = StubApi(jobs)
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/#/jobs")
    first = page.locator(".job-row[data-job-id=a1b2c3d4e5f60718] .job-meta")
    second = page.locator(".job-row[data-job-id=f0e1d2c3b4a59687] .job-meta")
    second.locator(".job-changed").wait_for()
    assert "#a1b2c3d4" in first.inner_text() and "#f0e1d2c3" in second.inner_text()
    assert second.locator(".job-changed").inner_text() == "lr 0.01, seed 3"
    assert first.locator(".job-changed").count() == 0  # every parameter its default
    assert first.inner_text().replace("#a1b2c3d4", "") != second.inner_text().replace(
        "#f0e1d2c3", ""
    )


def test_defaults_match_nada_params(page):
    # The stub serves GET /params from nada.params.schema(), as the service does.
    _open(page)
    page.locator("form.job-form").wait_for()
    defaults = P.AdaptParams("a", "b")
    for f in dataclasses.fields(P.AdaptParams):
        field = page.locator(f"form.job-form [name={f.name}]")
        if f.name in P.RANGES and field.count():
            assert float(field.input_value()) == getattr(defaults, f.name), f.name
    hint = page.locator("[data-field=steps] .hint").text_content()
    assert hint.startswith("1 – 5000 steps · default 300")


def test_form_is_labelled_and_keyboard_usable(page):
    stub = _open(page)
    page.locator("form.job-form").wait_for()
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('form.job-form input, form.job-form select')]
        .filter((el) => !el.hidden && el.type !== 'hidden')
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map((el) => el.outerHTML)""")
    assert unlabeled == []
    # Tab to the second preset, press Enter: both prompts filled; then submit with Enter.
    page.locator(".presets .chip").first.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.get_by_label("Source text").input_value() == "face"
    assert page.get_by_label("Target text").input_value() == "Shrek"
    page.keyboard.press("Enter")  # focus is in the target field: Enter submits the form
    page.wait_for_url(re.compile(r"#/jobs/job\d+$"))
    assert stub.created[-1]["target_text"] == "Shrek"
    # Advanced opens from the keyboard too (a native <details>).
    page.goto(f"{ORIGIN}/#/")
    page.locator("summary").focus()
    page.keyboard.press("Enter")
    assert page.locator("details.advanced").evaluate("d => d.open")


def test_client_side_range_error_sits_next_to_its_field(page):
    stub = _open(page)
    page.locator("form.job-form").wait_for()
    page.get_by_label("Source text").fill("photo")
    page.get_by_label("Target text").fill("sketch")
    page.locator("summary").click()
    page.get_by_label("Batch size").fill("65")
    page.get_by_role("button", name="Start adaptation").click()
    error = page.locator("[data-field=batch_size] .field-error")
    assert error.inner_text() == "batch_size must be 1..64 (got 65)"
    assert page.get_by_label("Batch size").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Batch size").evaluate("el => el === document.activeElement")
    assert not stub.created  # nothing was sent


def test_phone_layout_has_no_sideways_scroll(make_page, page_errors):
    page = make_page(is_mobile=True, has_touch=True, viewport={"width": 390, "height": 844})
    for hash_ in ("#/", "#/jobs", "#/jobs/run1"):
        _open(page, hash_=hash_)
        page.locator("main .panel").first.wait_for()
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{hash_} scrolls sideways by {overflow}px on a phone"
    # One column: the samples card sits above the loss card, not beside it.
    samples = page.locator(".samples-card").bounding_box()
    loss = page.locator("#loss-heading").bounding_box()
    assert loss["y"] > samples["y"] + samples["height"] - 1
    assert not page_errors.uncaught


def test_the_scores_card_draws_one_chart_per_score(page):
    _open(page, hash_="#/jobs/done1")
    card = page.locator(".scores-card")
    card.wait_for()
    names = card.locator("figure.score").evaluate_all("els => els.map(e => e.dataset.score)")
    assert names == ["direction", "target", "content", "diversity", "loss"]
    label = card.locator("figure.score[data-score=diversity] svg").get_attribute("aria-label")
    assert (
        label.startswith("Diversity chart: diversity over 4 steps") and "0.7 at step 300" in label
    )
    # a modulation job links its domain file beside the generator
    domain = page.locator("a[data-role=domain]")
    assert (
        domain.is_visible() and domain.get_attribute("href") == f"{ORIGIN}/api/v1/jobs/done1/domain"
    )
    assert domain.get_attribute("download").endswith("-domain.pt")
    # a job without scores has no card (and a weights job no domain link)
    page.goto(f"{ORIGIN}/#/jobs/run1")
    page.locator(".sample-frame img").wait_for()
    assert page.locator(".scores-card").is_hidden()
    assert page.locator("a[data-role=domain]").is_hidden()

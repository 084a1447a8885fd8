"""The form's availability badges and the failure banner's collapsed details, through the
stub API (stub_api.py): generators and CLIP models marked cached, download or manual (a
manual generator is shown but cannot be chosen), and a model_unavailable job whose banner
says what to do and keeps the operator's details under "Details"."""

from __future__ import annotations

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"


class AvailabilityStub(StubApi):
    def handle(self, route) -> None:  # type: ignore[no-untyped-def]
        api = route.request.url.split("/api/v1/", 1)[-1]
        if api == "generators":
            data = [
                {"name": "ffhq-1024", "size": 1024, "description": "Faces", "url": "https://x",
                 "sha256": None, "availability": "downloadable",
                 "availability_note": "downloaded on first use, about 380 MB",
                 "license": "NVIDIA Source Code License-NC (non-commercial use only)"},
                {"name": "mine-256", "size": 256, "description": "Ours", "url": None,
                 "sha256": None, "availability": "manual",
                 "availability_note": "not on this server and not downloadable"},
                {"name": "cached-512", "size": 512, "description": "Here", "url": None,
                 "sha256": None, "availability": "cached", "availability_note": "",
                 "family": "stylegan3"},
            ]  # fmt: skip
            return self._json(route, {"data": data, "count": 3, "random_sizes": [32]})
        if api == "clip-models":
            data = [
                {"name": n, "architecture": n.split(":")[0], "pretrained": n.split(":")[1],
                 "default": True, "availability": a, "availability_note": ""}
                for n, a in (("ViT-B-32:openai", "manual"), ("ViT-B-32:random", "cached"))
            ]  # fmt: skip
            return self._json(route, {"data": data, "count": 2})
        return super().handle(route)


def test_generator_and_clip_options_carry_their_availability(page):
    stub = AvailabilityStub([])
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/")
    select = page.locator("select[name=generator]")
    select.wait_for()
    options = {
        o["value"]: o
        for o in select.locator("option").evaluate_all(
            "os => os.map(o => ({value: o.value, text: o.textContent, disabled: o.disabled}))"
        )
    }
    assert "download" in options["ffhq-1024"]["text"] and not options["ffhq-1024"]["disabled"]
    assert "manual" in options["mine-256"]["text"] and options["mine-256"]["disabled"]
    assert "cached" in options["cached-512"]["text"]
    assert "cached" not in options["random-32"]["text"]  # its group says: no download
    assert select.input_value() == "ffhq-1024"  # the default: downloadable, so usable
    desc = page.locator(".generator-desc")
    assert "about 380 MB" in desc.inner_text() and "non-commercial" in desc.inner_text()
    select.select_option("cached-512")
    assert "StyleGAN3" in desc.inner_text()
    labels = page.locator("datalist option").evaluate_all(
        "os => Object.fromEntries(os.map(o => [o.value, o.label]))"
    )
    assert labels["ViT-B-32:openai"].startswith("manual")
    assert labels["ViT-B-32:random"] == "cached"
    page.locator("details.advanced > summary").click()
    name = page.locator(".clip-name").first
    name.fill("ViT-B-32:openai")
    badge = page.locator(".clip-badge").first
    assert badge.is_visible() and "manual" in badge.inner_text()


def test_a_failed_jobs_details_are_collapsed_under_the_message(page):
    job = make_job("f1", "photo", "sketch", status="failed", step=0, error={
        "code": "model_unavailable",
        "message": "this server has no copy of generator 'ffhq-1024' and cannot download it",
        "details": "set NADA_GENERATOR_FFHQ_1024=PATH",
    })  # fmt: skip
    stub = StubApi([job])
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/#/jobs/f1")
    banner = page.locator(".banner-failed")
    banner.wait_for()
    assert "no copy of generator 'ffhq-1024'" in banner.inner_text()
    details = banner.locator("details.error-details")
    assert details.get_attribute("open") is None
    assert not banner.get_by_text("NADA_GENERATOR_FFHQ_1024").is_visible()
    details.locator("summary").click()
    assert banner.get_by_text("NADA_GENERATOR_FFHQ_1024=PATH").is_visible()

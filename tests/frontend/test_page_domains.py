"""The home view's *Ready-made domains* and the job view of such a job, through the stub
API (stub_api.py): the real service's domains come from its own process's table, which a
test cannot give a small stand-in entry (tests/backend/test_domains_api.py runs the job
through the real API and worker). A usable domain's *Use* creates the job and opens it; a
manual one cannot be used; the job view says it is ready-made, shows no training cards and
offers the photo and explore cards."""

from __future__ import annotations

import re

import pytest
from stub_api import StubApi, make_job

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"
DOMAINS = [
    {"name": "nada-anime", "description": "FFHQ faces adapted to anime drawings",
     "base": "ffhq-1024", "size": 1024, "source_text": "", "target_text": "",
     "domain": "anime drawings", "url": "https://x/anime.pt", "license": "nvidia-nc",
     "source": "", "notes": "", "size_mb": None, "availability": "downloadable",
     "availability_note": "downloaded on first use"},
    {"name": "nada-pixar", "description": "FFHQ faces adapted to Pixar characters",
     "base": "ffhq-1024", "size": 1024, "source_text": "photo", "target_text": "pixar",
     "domain": "Pixar characters", "url": "https://x/pixar.pt", "license": "nvidia-nc",
     "source": "", "notes": "", "size_mb": None, "availability": "manual",
     "availability_note": "not on this server, and this server downloads nothing (offline)"},
]  # fmt: skip


class DomainsStub(StubApi):
    def handle(self, route) -> None:  # type: ignore[no-untyped-def]
        req = route.request
        api = req.url.split("/api/v1/", 1)[-1]
        if api == "domains":
            return self._json(route, {"data": DOMAINS, "count": len(DOMAINS)})
        match = re.fullmatch(r"domains/([a-z0-9._-]+)/jobs", api)
        if match and req.method == "POST":
            job = make_job("d" * 32, "", "", status="succeeded", step=1, total=1,
                           sample_every=1000, kind="domain")  # fmt: skip
            job["params"] = {"domain": match.group(1), "generator": "ffhq-1024"}
            job["samples"] = []
            self.jobs[job["id"]] = job
            self.created.append({"domain": match.group(1)})
            return self._json(route, job, status=202)
        return super().handle(route)


def test_use_a_ready_made_domain_and_open_its_job(page):
    stub = DomainsStub([])
    page.route(f"{ORIGIN}/**", stub.handle)
    page.goto(f"{ORIGIN}/")
    panel = page.locator(".domains-panel")
    panel.locator("[data-domain=nada-anime]").wait_for()
    assert "base ffhq-1024" in panel.locator("[data-domain=nada-anime]").inner_text()
    assert panel.get_by_role("button", name="Use nada-pixar").is_disabled()  # manual
    assert "photo → pixar" in panel.locator("[data-domain=nada-pixar]").inner_text()

    panel.get_by_role("button", name="Use nada-anime").click()
    page.wait_for_url(re.compile(r"#/jobs/d{32}$"))
    assert stub.created == [{"domain": "nada-anime"}]
    heading = page.locator("h1.job-heading")
    heading.filter(has_text="ready-made nada-anime").wait_for()
    assert "ffhq-1024" in heading.inner_text()
    page.locator(".explore-card").wait_for(state="visible")
    page.locator(".photo-card").wait_for(state="visible")
    assert not page.locator("#loss-heading").is_visible()  # nothing was trained

"""The API docs render in a browser that can reach nothing but this service: /docs (Swagger
UI) lists the operations and /redoc (ReDoc) the reference, with every other host cut off."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


def _offline(page, service) -> list[str]:  # type: ignore[no-untyped-def]
    """Abort every request to another host than the service's; the aborted URLs."""
    own = urlsplit(service.url).netloc
    refused: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if urlsplit(r.request.url).netloc == own:
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_swagger_ui_renders_offline(page, service) -> None:  # type: ignore[no-untyped-def]
    refused = _offline(page, service)
    page.goto(service.url + "docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/jobs").count() > 0
    assert refused == []


def test_redoc_renders_offline(page, service) -> None:  # type: ignore[no-untyped-def]
    refused = _offline(page, service)
    page.goto(service.url + "redoc")
    page.get_by_text("/api/v1/jobs").first.wait_for(timeout=30_000)
    # ReDoc's bundle names one image of its own vendor's (the "powered by" logo in the
    # sidebar): decorative, and the page is whole without it.
    assert [u for u in refused if not u.endswith("/redoc/logo-mini.svg")] == []

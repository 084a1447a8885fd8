"""/docs and /redoc load every script and style from this service, none from a CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_the_docs_pages_name_only_this_services_assets(client: Any, page: str, script: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", r.text)
    named = [a or b for a, b in urls]
    assert named and not [u for u in named if "://" in u or u.startswith("//")], named
    assert f"/docs-assets/{script}" in named
    for url in named:
        if url.startswith("/docs-assets/"):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "fonts.googleapis" not in r.text and "cdn.jsdelivr" not in r.text

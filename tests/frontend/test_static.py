"""Checks on the page's files that need no browser: it keeps no copy of the parameter
declarations (nada/params.py, served at GET /api/v1/params), it loads nothing from
outside, and it never parses strings as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nada import params as P

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
SOURCES = sorted(p for p in FRONTEND.rglob("*") if p.suffix in {".html", ".js", ".css"})
SCRIPTS = [p for p in SOURCES if p.suffix == ".js"]


def _rel(path: Path) -> str:
    return path.relative_to(FRONTEND).as_posix()


def test_sources_exist():
    names = {_rel(p) for p in SOURCES}
    assert {"index.html", "styles.css", "js/app.js"} <= names


def test_no_copy_of_the_parameter_declarations():
    # The form's labels, help, ranges and groups come from GET /api/v1/params at load
    # time; a second table in the page would drift from nada/params.py.
    assert not (FRONTEND / "params.json").exists()
    copied = [
        (f["name"], _rel(path))
        for f in P.describe()
        for path in SOURCES
        if f["help"] in path.read_text()
    ]
    assert not copied, f"help text of nada/params.py copied into the page: {copied}"
    for path in SCRIPTS:
        for other in ("openapi.json", "params.json"):
            assert other not in path.read_text(), f"{_rel(path)} reads {other}"


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_external_resources(path):
    text = path.read_text()
    # The only absolute URL allowed is the SVG namespace (an identifier, never fetched).
    urls = [
        u
        for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
        if not u.startswith("http://www.w3.org/")
    ]
    assert not urls, f"{path.name} refers outside the service: {urls}"
    assert "@import url(" not in text


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_no_html_parsing_of_strings(path):
    text = path.read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in text, f"{path.name} uses {sink}"


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_urls_are_relative(path):
    # A leading '/' would break the page behind a path prefix; only relative API paths.
    text = path.read_text()
    assert not re.search(r"""fetch\(\s*["'`]/""", text)
    assert not re.search(r"""new URL\(\s*["'`]/""", text)

"""Checks on the page's files that need no browser: its parameter table matches
nada/params.py, it loads nothing from outside, and it never parses strings as HTML."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from nada import params as P

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
SOURCES = sorted(p for p in FRONTEND.rglob("*") if p.suffix in {".html", ".js", ".css"})


def _fallback() -> dict:
    return json.loads((FRONTEND / "params.json").read_text())


def test_fallback_table_lists_every_parameter():
    fields = _fallback()["fields"]
    assert list(fields) == [f.name for f in dataclasses.fields(P.AdaptParams)]


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(P.AdaptParams)])
def test_fallback_table_matches_nada_params(name):
    spec = _fallback()["fields"][name]
    f = next(f for f in dataclasses.fields(P.AdaptParams) if f.name == name)
    if f.default is not dataclasses.MISSING:
        assert spec["default"] == f.default
    elif f.default_factory is not dataclasses.MISSING:
        assert spec["default"] == [dataclasses.asdict(c) for c in f.default_factory()]
    if name in P.RANGES:
        assert (spec["min"], spec["max"]) == P.RANGES[name]
        assert spec["type"] == ("integer" if isinstance(f.default, int) else "number")
    if name == "selection":
        assert spec["enum"] == list(P.SELECTION_METHODS)
    if name in ("source_text", "target_text"):
        assert spec["maxLength"] == P.MAX_PROMPT_CHARS


def test_fallback_rejects_what_nada_params_rejects():
    # The defaults validate, and one step past each bound does not.
    base = P.AdaptParams("photo", "sketch")
    for name, (lo, hi) in P.RANGES.items():
        step = 1 if isinstance(getattr(base, name), int) else 1e-9
        for bad in (lo - step if lo is not None else None, hi + step if hi is not None else None):
            if bad is None:
                continue
            with pytest.raises(P.ParamError):
                base.replace(**{name: bad})


def test_sources_exist():
    names = {p.relative_to(FRONTEND).as_posix() for p in SOURCES}
    assert {"index.html", "styles.css", "js/app.js"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(FRONTEND).as_posix())
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


@pytest.mark.parametrize("path", [p for p in SOURCES if p.suffix == ".js"], ids=lambda p: p.name)
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


@pytest.mark.parametrize("path", [p for p in SOURCES if p.suffix == ".js"], ids=lambda p: p.name)
def test_urls_are_relative(path):
    # A leading '/' would break the page behind a path prefix; only relative API paths.
    text = path.read_text()
    assert not re.search(r"""fetch\(\s*["'`]/""", text)
    assert not re.search(r"""new URL\(\s*["'`]/""", text)

"""One declaration per parameter (nada/params.py) drives the CLI, the API and the page.

The page's third of this check is tests/frontend/test_page_params.py (a real browser)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nada import params as P


@pytest.fixture(scope="module")
def adapt_parser() -> argparse.ArgumentParser:
    from cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["adapt"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from backend.main import create_app
    from jobs.settings import Settings

    data = Path(tmp_path_factory.mktemp("data"))
    return TestClient(create_app(Settings(data_dir=data, frontend_dir=None)))


def test_every_field_is_declared_with_its_documentation() -> None:
    for spec in P.describe():
        assert spec["help"] and spec["label"] and spec["group"] in P.GROUPS, spec["name"]
        assert not spec["required"]  # prompts too: target images may stand in for them
    assert [s["name"] for s in P.describe()] == list(P.FIELD_NAMES)
    assert set(P.RANGES) == {s["name"] for s in P.describe() if "min" in s}


@pytest.mark.parametrize("spec", P.describe(), ids=lambda s: s["name"])
def test_the_cli_flag_comes_from_the_declaration(adapt_parser, spec) -> None:  # type: ignore[no-untyped-def]
    action = next(a for a in adapt_parser._actions if spec["flag"] in a.option_strings)
    assert spec["help"] in action.help
    if spec["required"]:
        assert action.required
    elif spec["type"] == "clip_models":
        assert action.default == ",".join(c["name"] for c in spec["default"])
    else:
        assert action.default == spec["default"]
    if spec["type"] in ("integer", "number"):
        assert action.type is {"integer": int, "number": float}[spec["type"]]


@pytest.mark.parametrize("spec", P.describe(), ids=lambda s: s["name"])
def test_the_request_schema_comes_from_the_declaration(client, spec) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/openapi.json").json()["components"]["schemas"]["JobCreate"]
    prop = body["properties"][spec["name"]]
    assert prop["title"] == spec["label"]
    assert prop["description"].startswith(spec["help"])
    if spec["unit"]:
        assert f"({spec['unit']})" in prop["description"]
    assert (spec["name"] in body.get("required", [])) == spec["required"]
    if not spec["required"]:
        assert prop["default"] == spec["default"]
    for ours, theirs in (("min", "minimum"), ("max", "maximum")):
        if ours in spec:
            assert prop[theirs] == spec[ours]
    if "choices" in spec:
        assert prop["enum"] == spec["choices"]


def test_the_api_serves_the_declaration(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/params")
    assert r.status_code == 200
    assert r.json() == P.schema()

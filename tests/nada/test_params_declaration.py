"""One declaration per parameter drives the CLI, the API and the page, for every kind.

Adaptation (nada/params.py), inversion and edit (nada/photo_params.py) and render
(nada/render_params.py) declare each field once with `nada.declare.param()`; here each
field's CLI flag, its OpenAPI property in its request body and its `GET /params` entry are
checked against that declaration. The page's third of this check is
tests/frontend/test_page_params.py (a real browser)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nada import params as P
from nada import scores
from nada.declare import bounds_text, describe, specs
from nada.photo_params import EditParams, InvertParams
from nada.render_params import RenderParams


@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    from cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.fixture(scope="module")
def adapt_parser(commands) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    return commands["adapt"]


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
    assert r.json()["scores"] == scores.describe()  # the page's Scores card and comparison


# -- every other kind: invert, edit, render -------------------------------------------------

KINDS = {"invert": InvertParams, "edit": EditParams, "render": RenderParams}
# The commands that set each kind's fields (edit has none: `nada invert --adapted PT`
# renders a photo's code through files, not through jobs).
COMMANDS = {"invert": ("invert",), "edit": (), "render": ("video", "generate")}
# Fields no flag sets: the service's own, or what the command decides (`nada video` is mode
# 'video', `nada generate --mix` mode 'mix').
NO_FLAG = {"invert": {"photo_sha256"}, "edit": {"inversion_id", "job_id", "edits"},
           "render": {"job_id", "mode"}}  # fmt: skip
# Flags a command spells itself, for what a declaration cannot say: a path or a name where
# the service takes a job's generator, a file's suffix, ROWS:COLS, and plain `nada
# generate`'s own --seeds and --truncation (from any generator, not only a render's), and
# --edit, given once per edit.
SPELLED_BY_THE_COMMAND = {
    ("video", "--generator"), ("video", "--out"), ("generate", "--base"),
    ("generate", "--mix"), ("generate", "--seeds"), ("generate", "--truncation"),
    ("video", "--edit"), ("generate", "--edit"),  # repeatable: one edit each, joined
    ("video", "--blend"), ("generate", "--blend"),  # repeatable: RUN|PT=STRENGTH each
    ("video", "--domains"),  # a seed list that also picks mode 'domains'
}  # fmt: skip
# Each kind's request body in OpenAPI (the inversion's: its multipart `params` field).
BODIES = {"invert": "InversionParams", "edit": "EditCreate", "render": "RenderCreate"}
FIELDS = [(kind, spec) for kind, cls in KINDS.items() for spec in specs(cls)]
FIELD_IDS = [f"{kind}.{spec.name}" for kind, spec in FIELDS]


@pytest.fixture(scope="module")
def openapi(client) -> dict:  # type: ignore[no-untyped-def]
    return client.get("/openapi.json").json()


def _body(openapi: dict, kind: str) -> dict:
    if kind == "invert":  # a JSON text field beside the photo: its schema is its content's
        body = openapi["paths"]["/api/v1/inversions"]["post"]["requestBody"]
        form = body["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"]
        return form["properties"]["params"]["contentSchema"]
    return openapi["components"]["schemas"][BODIES[kind]]


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_every_kind_is_documented(kind: str) -> None:
    cls = KINDS[kind]
    for spec in specs(cls):
        assert spec.decl.help and spec.decl.label and spec.decl.group in cls.GROUPS, spec.name
    flagless = {s.name for s in specs(cls) if not any(s.flag(c) for c in COMMANDS[kind] or [None])}
    assert flagless == NO_FLAG[kind]


@pytest.mark.parametrize(("kind", "spec"), FIELDS, ids=FIELD_IDS)
def test_the_cli_flags_come_from_the_declaration(commands, kind, spec) -> None:  # type: ignore[no-untyped-def]
    for command in COMMANDS[kind]:
        flag = spec.flag(command)
        if flag is None or (kind == "invert" and spec.name in NO_FLAG[kind]):
            continue
        action = next(a for a in commands[command]._actions if flag in a.option_strings)
        if (command, flag) in SPELLED_BY_THE_COMMAND:
            continue
        assert action.dest == spec.name
        assert spec.decl.help in action.help
        if spec.decl.range is not None:
            assert f"({bounds_text(spec.decl.range)}" in action.help, action.help
        if spec.type == "seeds":
            assert action.default == ",".join(str(s) for s in spec.default)
        else:
            assert action.default == spec.default
        if spec.type in ("integer", "number"):
            assert action.type is {"integer": int, "number": float}[spec.type]
        if spec.type == "boolean":
            assert action.const is (not spec.default)  # a switch away from the default


@pytest.mark.parametrize(("kind", "spec"), FIELDS, ids=FIELD_IDS)
def test_the_request_body_comes_from_the_declaration(openapi, kind, spec) -> None:  # type: ignore[no-untyped-def]
    body = _body(openapi, kind)
    if spec.decl.server:  # set by the service: never part of a request
        assert spec.name not in body["properties"]
        return
    prop = body["properties"][spec.name]
    assert prop["title"] == spec.decl.label
    assert prop["description"].startswith(spec.decl.help)
    assert (spec.name in body.get("required", [])) == spec.required
    if not spec.required:
        assert prop["default"] == spec.json_default()
    if spec.decl.range is not None:
        names = ("minItems", "maxItems") if spec.is_list else ("minimum", "maximum")
        assert (prop[names[0]], prop[names[1]]) == spec.decl.range
    if spec.decl.items is not None:
        assert (prop["items"]["minimum"], prop["items"]["maximum"]) == spec.decl.items
    if spec.decl.choices:
        assert tuple(prop["enum"]) == spec.decl.choices
    if spec.decl.pattern:
        assert prop["pattern"] == f"^{spec.decl.pattern}$"


@pytest.mark.parametrize("kind", ["adapt", *KINDS])
def test_every_kind_is_served_as_declared(client, kind) -> None:  # type: ignore[no-untyped-def]
    cls = {"adapt": P.AdaptParams, **KINDS}[kind]
    r = client.get(f"/api/v1/params/{kind}")
    assert r.status_code == 200
    assert r.json()["fields"] == describe(cls)
    assert [g["name"] for g in r.json()["groups"]] == list(cls.GROUPS)
    for entry, spec in zip(r.json()["fields"], specs(cls), strict=True):
        assert entry.get("server", False) == spec.decl.server
        if spec.decl.range is not None:
            assert (entry.get("min"), entry.get("max")) == spec.decl.range, spec.name
        if not spec.required:
            assert entry["default"] == spec.json_default()
    assert client.get("/api/v1/params/sweep").status_code == 422


def test_the_forms_listings_are_the_declarations_less_the_services_own(client) -> None:  # type: ignore[no-untyped-def]
    """What the photo card and the Explore form read (with the photo limits, the seed cap)."""
    for path, cls in (("inversions/params", InvertParams), ("renders/params", RenderParams)):
        fields = client.get(f"/api/v1/{path}").json()["fields"]
        assert fields == describe(cls, sent_only=True)
        assert {f["name"] for f in fields} == {s.name for s in specs(cls) if not s.decl.server}


def test_the_page_spells_no_score_and_no_photo_range() -> None:
    """The page reads the scores and the photo form's range from the API (GET /params,
    GET /inversions/params): no second copy to drift."""
    root = Path(__file__).resolve().parents[2] / "frontend" / "js"
    text = "\n".join(p.read_text() for p in root.rglob("*.js"))
    for score in scores.SCORES:
        assert score.label not in text, score.label
    photo_form = (root / "job" / "photo-form.js").read_text()
    refine = next(s for s in specs(InvertParams) if s.name == "refine_steps")
    assert refine.decl.range is not None
    assert f"max: {refine.decl.range[1]}" not in photo_form

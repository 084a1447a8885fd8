"""Hostile input at the API's edge (issue 14): every refusal is a 4xx that can be encoded,
nothing is stored for a refused request, and nothing stored can break a list or detail.

Each test runs on SQLite (the embedded mode) and PostgreSQL (`client` fixture)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from jobs.db.models import Job
from jobs.db.session import get_engine, session_scope

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}
JSON = {"content-type": "application/json"}


def _jobs(settings) -> int:  # type: ignore[no-untyped-def]
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0


def _post_raw(client, body: str, headers=JSON):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/jobs", content=body.encode("utf-8"), headers=headers)


def _assert_refused(r, status: int, field: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()  # it decodes: the answer was encodable
    if field is not None:
        fields = [e["loc"][-1] for e in body["detail"]]
        assert field in fields, body


# -- 1. lone surrogates -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fragment, field",
    [
        ('"target_text": "sk\\ud800etch"', "target_text"),
        ('"source_text": "\\udfff"', "source_text"),
        ('"generator": "random\\ud800"', "generator"),
        ('"clip_models": [{"name": "ViT-B-32\\ud800"}]', "name"),
        ('"st\\ud800eps": 3', None),  # an unknown key that is not even text
        ('"target_text": "' + "\\ud800" * 400 + '"', "target_text"),
    ],
)
def test_lone_surrogates_are_422_and_store_nothing(client, settings, fragment, field) -> None:  # type: ignore[no-untyped-def]
    base = {k: v for k, v in SMALL.items() if f'"{k}"' not in fragment}
    body = json.dumps(base)[:-1] + ", " + fragment + "}"
    r = _post_raw(client, body)
    _assert_refused(r, 422, field)
    assert len(r.text) < 4000  # echoed input is capped
    assert _jobs(settings) == 0
    assert client.get(f"{API}/jobs").status_code == 200


# -- 2. non-finite numbers ----------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309"])
@pytest.mark.parametrize("where", ["lr", "weight"])
def test_non_finite_numbers_are_422_naming_the_field(client, settings, number, where) -> None:  # type: ignore[no-untyped-def]
    if where == "lr":
        body = json.dumps(SMALL)[:-1] + f', "lr": {number}}}'
    else:
        body = (
            json.dumps(SMALL)[:-1]
            + f', "clip_models": [{{"name": "ViT-B-32", "weight": {number}}}]}}'
        )
    r = _post_raw(client, body)
    _assert_refused(r, 422, where)
    assert _jobs(settings) == 0


# -- 3. body size -------------------------------------------------------------------------


def test_a_huge_body_is_413_without_echo(client, settings) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({**SMALL, "target_text": "x" * (2 << 20)})
    r = _post_raw(client, body)
    assert r.status_code == 413, r.text[:200]
    assert len(r.content) < 1000
    assert _jobs(settings) == 0


def test_a_huge_chunked_body_is_413(client, settings) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # no Content-Length: counted while read
        yield b'{"source_text": "photo", "target_text": "'
        for _ in range(40):
            yield b"y" * 4096
        yield b'"}'

    r = client.post(f"{API}/jobs", content=chunks(), headers=JSON)
    assert r.status_code == 413, r.text[:200]
    assert _jobs(settings) == 0


# -- 9. lax input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"steps": True}, "steps"),
        ({"steps": "5"}, "steps"),
        ({"steps": 5.0}, "steps"),
        ({"lr": "0.01"}, "lr"),
        ({"include_torgb": 1}, "include_torgb"),
        ({"include_torgb": "true"}, "include_torgb"),
        ({"target_text": "Photo "}, "target_text"),
        ({"target_text": "PHOTO"}, "target_text"),
        ({"source_text": " face  paint", "target_text": "Face Paint"}, "target_text"),
    ],
)
def test_lax_values_are_refused(client, settings, change, field) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={**SMALL, **change})
    _assert_refused(r, 422, field)
    assert _jobs(settings) == 0


def test_prompts_are_stored_normalised(client) -> None:  # type: ignore[no-untyped-def]
    decomposed = "cafe\u0301"  # e + combining acute
    r = client.post(f"{API}/jobs", json={**SMALL, "target_text": f"  {decomposed} "})
    assert r.status_code == 202, r.text
    assert r.json()["params"]["target_text"] == "caf\u00e9"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(client, settings, ctype) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": ctype} if ctype else {}
    r = client.post(f"{API}/jobs", content=json.dumps(SMALL).encode(), headers=headers)
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["detail"]
    assert _jobs(settings) == 0


def test_json_with_a_charset_is_fine(client) -> None:  # type: ignore[no-untyped-def]
    r = _post_raw(client, json.dumps(SMALL), {"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text


def test_head_is_answered_wherever_get_is(client) -> None:  # type: ignore[no-untyped-def]
    job = client.post(f"{API}/jobs", json=SMALL).json()
    for path in (
        f"{API}/jobs",
        f"{API}/jobs/{job['id']}",
        f"{API}/generators",
        f"{API}/clip-models",
        f"{API}/params",
        f"{API}/healthz",
        "/openapi.json",
    ):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
    head = client.head(f"{API}/jobs/{'0' * 32}")
    assert head.status_code == 404


def test_head_of_an_event_stream_returns_at_once(client) -> None:  # type: ignore[no-untyped-def]
    job = client.post(f"{API}/jobs", json=SMALL).json()  # queued: its stream would go on
    r = client.head(f"{API}/jobs/{job['id']}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")


# -- stored rows that earlier versions let in --------------------------------------------


def test_nothing_stored_breaks_the_list_or_the_detail(client, settings) -> None:  # type: ignore[no-untyped-def]
    """Rows as an earlier version could leave them: a lone surrogate in the params, NaN
    losses. Every read route still answers 200 with valid JSON."""
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    sqlite = settings.db_url.startswith("sqlite")
    with get_engine(settings.db_url).begin() as conn:
        conn.execute(
            text("UPDATE jobs SET params = :params, error_code = 'x', error_message = 'm' "
                 "WHERE id = :id"),
            {"params": json.dumps({**SMALL, "target_text": "sk\ud800etch"}), "id": job_id},
        )  # fmt: skip
        if sqlite:  # PostgreSQL's json type refuses NaN; SQLite kept what json.dumps wrote
            conn.execute(
                text("UPDATE jobs SET losses = :losses WHERE id = :id"),
                {"losses": '{"total": NaN, "direction": Infinity}', "id": job_id},
            )
    listed = client.get(f"{API}/jobs")
    assert listed.status_code == 200, listed.text
    detail = client.get(f"{API}/jobs/{job_id}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["params"]["target_text"] == "sk\\ud800etch"
    if sqlite:
        assert body["losses"] == {"total": None, "direction": None}
    assert client.post(f"{API}/jobs/{job_id}/cancel").status_code == 200  # queued: canceled now


def test_a_huge_last_event_id_is_no_error(client) -> None:  # type: ignore[no-untyped-def]
    """Past PostgreSQL's 32-bit event ids the replay finds nothing instead of failing."""
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    client.post(f"{API}/jobs/{job_id}/cancel")
    r = client.get(f"{API}/jobs/{job_id}/events", headers={"Last-Event-ID": str(2**40)})
    assert r.status_code == 200
    assert "event: canceled" not in r.text

"""Property-based fuzzing of every API operation with hostile values (issue 14).

Arbitrary Unicode (lone surrogates included, written as JSON escapes the way a client can
send them), non-finite and huge numbers, deep and wide JSON, odd ids and query strings.
The properties: no answer is a 5xx, every answer with a body is valid JSON or the expected
media type, and `GET /api/v1/jobs` still answers 200 afterwards (nothing stored broke it).
Runs on SQLite and PostgreSQL (`client` fixture)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

API = "/api/v1"
FIELDS = ["source_text", "target_text", "generator", "clip_models", "steps", "layers", "lr",
          "selection", "include_torgb", "seed", "mixing", "sample_every", "unknown"]  # fmt: skip

# Text including lone surrogates: json.dumps escapes them as \udXXX, as a client may send.
texts = st.text(st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ["photo", "sketch", "random-64", "ViT-B-32:random", "\ud800", "a\x00b", "x" * 400]
)
numbers = (
    st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 2**31, 2**63, 1e309, -1e309])
)
leaves = texts | numbers | st.booleans() | st.none()
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _encode(body: Any) -> bytes:
    # allow_nan: NaN/Infinity go out as bare tokens, which Python's json accepts on arrival
    return json.dumps(body, allow_nan=True).encode("utf-8")


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _check(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.content and r.headers.get("content-type", "").startswith("application/json"):
        r.json()


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(FIELDS) | texts, values, max_size=6))
def test_submissions(client, body) -> None:  # type: ignore[no-untyped-def]
    body = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", **body}
    r = client.post(
        f"{API}/jobs", content=_encode(body), headers={"content-type": "application/json"}
    )
    _check(r)
    _check(client.get(f"{API}/jobs"))
    assert client.get(f"{API}/jobs").status_code == 200


@FUZZ
@given(body=values)
def test_any_json_document(client, body) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"{API}/jobs", content=_encode(body), headers={"content-type": "application/json"}
    )
    _check(r)
    assert client.get(f"{API}/jobs").status_code == 200


@pytest.mark.parametrize("depth", [100, 5000, 30000])
def test_deep_json(client, depth: int) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"{API}/jobs", content=_deep(depth), headers={"content-type": "application/json"}
    )
    _check(r)
    assert r.status_code in (400, 413, 422)
    assert client.get(f"{API}/jobs").status_code == 200


@FUZZ
@given(job_id=texts, step=texts, query=st.dictionaries(st.sampled_from(
    ["status", "offset", "limit", "after"]), texts | numbers.map(str), max_size=3))  # fmt: skip
def test_ids_steps_and_queries(client, job_id, step, query) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    jid = quote(job_id.encode("utf-8", "surrogatepass"), safe="")
    sid = quote(step.encode("utf-8", "surrogatepass"), safe="")
    for method, path in (
        ("GET", f"{API}/jobs/{jid}"),
        ("HEAD", f"{API}/jobs/{jid}"),
        ("POST", f"{API}/jobs/{jid}/cancel"),
        ("DELETE", f"{API}/jobs/{jid}"),
        ("GET", f"{API}/jobs/{jid}/samples/{sid}.png"),
        ("GET", f"{API}/jobs/{jid}/checkpoint"),
        ("GET", f"{API}/jobs/{jid}/checkpoints/{sid}.pt"),
        ("GET", f"{API}/jobs/{'0' * 32}/events?after={sid}"),
    ):
        _check(client.request(method, path))
    raw = "&".join(
        f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in query.items()
    )
    _check(client.get(f"{API}/jobs?{raw}"))
    assert client.get(f"{API}/jobs").status_code == 200


@FUZZ
@given(name=texts, payload=st.binary(max_size=256))
def test_generator_uploads(client, name, payload) -> None:  # type: ignore[no-untyped-def]
    files = {"file": ("g.pt", payload, "application/octet-stream")}
    data = {"name": name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
    _check(client.post(f"{API}/generators", data=data, files=files))
    _check(client.get(f"{API}/generators"))


@pytest.mark.parametrize(
    "params",
    ["[" * 4000, "{" * 4000, '{"refine_steps": ' + "[" * 2000 + "]" * 2000 + "}", '"' + "[" * 3000],
)
def test_deep_json_in_a_form_field(client, params: str) -> None:  # type: ignore[no-untyped-def]
    """A multipart field holding JSON is bounded like a JSON body: 4000 `[` (under the
    field's 4096-byte cap) is a 4xx naming the field, not a RecursionError (a 500)."""
    import io

    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(photo, format="PNG")
    r = client.post(
        f"{API}/inversions",
        data={"generator": "random-64", "params": params},
        files={"file": ("me.png", photo.getvalue(), "image/png")},
    )
    _check(r)
    assert r.status_code in (400, 422), r.text
    assert "params" in json.dumps(r.json()["detail"])
    assert client.get(f"{API}/jobs").status_code == 200

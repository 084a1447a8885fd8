"""Access control and input hardening of the API (docs/security.md), on SQLite and PostgreSQL.

Tokens, per-token job visibility, Idempotency-Key, per-token limits, CORS, the bind refusal
of `nada serve`, and the bad inputs of docs/security.md's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from backend.security import SubmissionLimiter
from cli import serve as serve_cli
from jobs import storage
from jobs.settings import Settings
from jobs.tokens import authenticate, parse_tokens
from nada import rundir
from nada.errors import CLIError

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}
ALICE, BOB = "alice-secret-token-0001", "bob-secret-token-00002"
# What the page's own fetches carry (frontend/js/api.js; the browser adds Origin).
PAGE = {"Origin": "http://testserver", "X-Nada-Request": "1"}


@pytest.fixture
def secured(settings: Settings, queue):  # type: ignore[no-untyped-def]
    """A client of an app with two named tokens and small per-token limits."""
    settings = settings.model_copy(
        update={
            "api_tokens": f"alice:{ALICE}, bob:{BOB}",
            "max_active_jobs": 3,
            "submissions_per_minute": 5,
        }
    )
    settings = Settings.model_validate(settings.model_dump())  # SecretStr, validators
    with TestClient(create_app(settings, queue=queue)) as client:
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_parse_hash_and_never_echo() -> None:
    tokens = parse_tokens(f"alice:{ALICE},{BOB}")
    assert [t.owner for t in tokens][0] == "alice" and tokens[1].owner.startswith("token-")
    assert all(ALICE not in repr(t) and BOB not in repr(t) for t in tokens)
    assert authenticate(tokens, ALICE) == tokens[0] and authenticate(tokens, "x" * 20) is None
    with pytest.raises(ValueError, match="of 'carol' is shorter") as info:
        parse_tokens("carol:short")
    assert "short" not in str(info.value).split("'carol'")[1].replace("shorter", "")
    with pytest.raises(ValueError, match="appears twice"):
        parse_tokens(f"a:{ALICE},a:{BOB}")
    s = Settings(api_tokens=f"alice:{ALICE}")
    assert ALICE not in repr(s) and ALICE not in str(s.model_dump())


def test_every_api_call_needs_a_token_but_healthz(secured) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, _auth("wrong-token-wrong-token"), {"Authorization": ALICE}):
        for method, path in [
            ("get", "/jobs"),
            ("post", "/jobs"),
            ("get", "/generators"),
            ("get", "/clip-models"),
            ("get", f"/jobs/{'0' * 32}"),
        ]:
            r = getattr(secured, method)(API + path, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert ALICE not in r.text
    assert secured.get(f"{API}/healthz").status_code == 200
    assert secured.get(f"{API}/generators", headers=_auth(ALICE)).status_code == 200


def test_a_token_sees_only_its_own_jobs(secured, settings) -> None:  # type: ignore[no-untyped-def]
    r = secured.post(f"{API}/jobs", json=SMALL, headers=_auth(ALICE))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    rundir.write_bytes(rundir.sample_path(storage.job_dir(settings.jobs_dir, job_id), 2), b"x")
    for method, path in [
        ("get", f"/jobs/{job_id}"),
        ("get", f"/jobs/{job_id}/events"),
        ("get", f"/jobs/{job_id}/samples/2.png"),
        ("get", f"/jobs/{job_id}/checkpoint"),
        ("get", f"/jobs/{job_id}/domain"),
        ("post", f"/jobs/{job_id}/cancel"),
        ("delete", f"/jobs/{job_id}"),
    ]:
        r = getattr(secured, method)(API + path, headers=_auth(BOB))
        assert r.status_code == 404, (method, path, r.text)
    assert secured.get(f"{API}/jobs", headers=_auth(BOB)).json()["count"] == 0
    mine = secured.get(f"{API}/jobs", headers=_auth(ALICE)).json()
    assert [j["id"] for j in mine["data"]] == [job_id]
    assert secured.get(f"{API}/jobs/{job_id}", headers=_auth(ALICE)).json()["status"] == "queued"
    r = secured.post(f"{API}/jobs/{job_id}/cancel", headers=_auth(ALICE))
    assert r.status_code == 200 and r.json()["status"] == "canceled"


def test_the_page_signs_in_with_a_cookie_that_opens_pictures_and_sign_out_ends_it(
    secured,
) -> None:  # type: ignore[no-untyped-def]
    """POST /session: the page's sign-in. A wrong token sets nothing; a right one sets an
    HttpOnly, SameSite=Strict cookie that then opens every route (also a sample picture,
    which an <img> fetches without headers) as that token; a header still wins; DELETE
    ends it."""
    assert secured.get(f"{API}/session").json() == {"tokens": True, "owner": None}
    r = secured.post(f"{API}/session", json={"token": "wrong-token-wrong-token"}, headers=PAGE)
    assert r.status_code == 401 and "set-cookie" not in r.headers and not secured.cookies
    assert secured.post(f"{API}/session", json={}, headers=PAGE).status_code == 422
    for hostile in ("\ud800" * 20, "x" * 513, None, 12345678901234567890):
        body = '{"token": ' + json.dumps(hostile) + "}"
        r = secured.post(
            f"{API}/session", content=body, headers={"content-type": "application/json", **PAGE}
        )
        assert r.status_code in (401, 422) and "set-cookie" not in r.headers, (hostile, r.text)

    r = secured.post(f"{API}/session", json={"token": ALICE}, headers=PAGE)
    assert r.status_code == 200 and r.json() == {"tokens": True, "owner": "alice"}
    cookie = r.headers["set-cookie"]
    assert "nada_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain HTTP here
    assert secured.get(f"{API}/session").json() == {"tokens": True, "owner": "alice"}
    r = secured.post(f"{API}/jobs", json=SMALL, headers=PAGE)  # no token: the cookie signs it
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert secured.get(f"{API}/jobs/{job_id}").json()["status"] == "queued"
    # A picture's route, as an <img> asks it (no header): past the token check, this job
    # simply has no sample yet (a request without the cookie gets 401 instead).
    r = secured.get(f"{API}/jobs/{job_id}/samples/0.png")
    assert r.status_code == 404 and "sample" in r.text, r.text
    # An explicit header is the caller's identity, whatever the cookie says.
    assert secured.get(f"{API}/jobs/{job_id}", headers=_auth(BOB)).status_code == 404

    assert secured.delete(f"{API}/session", headers=PAGE).status_code == 204
    assert not secured.cookies
    assert secured.get(f"{API}/jobs").status_code == 401
    assert secured.get(f"{API}/session").json() == {"tokens": True, "owner": None}


def test_without_tokens_the_session_says_so_and_sets_nothing(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"{API}/session").json() == {"tokens": False, "owner": None}
    r = client.post(f"{API}/session", json={"token": "anything-at-all-here"})
    assert r.status_code == 200 and "set-cookie" not in r.headers


def test_per_token_active_job_cap_and_rate_limit(secured) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert secured.post(f"{API}/jobs", json=SMALL, headers=_auth(ALICE)).status_code == 202
    r = secured.post(f"{API}/jobs", json=SMALL, headers=_auth(ALICE))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "NADA_MAX_ACTIVE_JOBS" in r.json()["detail"]
    # Bob has his own budget; after canceling, Alice hits the per-minute limit (5).
    assert secured.post(f"{API}/jobs", json=SMALL, headers=_auth(BOB)).status_code == 202
    for job in secured.get(f"{API}/jobs", headers=_auth(ALICE)).json()["data"]:
        secured.post(f"{API}/jobs/{job['id']}/cancel", headers=_auth(ALICE))
    codes = [
        secured.post(f"{API}/jobs", json=SMALL, headers=_auth(ALICE)).status_code for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    r = secured.post(f"{API}/jobs", json=SMALL, headers=_auth(ALICE))
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert "NADA_SUBMISSIONS_PER_MINUTE" in r.json()["detail"]


def test_submission_limiter_window() -> None:
    now = [0.0]
    limiter = SubmissionLimiter(2, clock=lambda: now[0])
    assert [limiter.acquire("a"), limiter.acquire("a")] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(60.0) and limiter.acquire("b") == 0.0
    now[0] = 59.5
    assert limiter.acquire("a") == pytest.approx(0.5)
    now[0] = 60.0
    assert limiter.acquire("a") == 0.0


def test_idempotency_key_replays_and_survives_a_restart(settings, queue, secured) -> None:  # type: ignore[no-untyped-def]
    key = {"Idempotency-Key": "order-42"}
    first = secured.post(f"{API}/jobs", json=SMALL, headers={**_auth(ALICE), **key})
    assert first.status_code == 202
    again = secured.post(f"{API}/jobs", json=SMALL, headers={**_auth(ALICE), **key})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    other = secured.post(f"{API}/jobs", json={**SMALL, "steps": 5}, headers={**_auth(ALICE), **key})
    assert other.status_code == 422 and "other parameters" in other.text
    # The same key is Bob's own.
    bobs = secured.post(f"{API}/jobs", json=SMALL, headers={**_auth(BOB), **key})
    assert bobs.status_code == 202 and bobs.json()["id"] != first.json()["id"]
    # A new API process (same database) still knows the key; no tokens: owner ''.
    with TestClient(create_app(settings, queue=queue)) as plain:
        a = plain.post(f"{API}/jobs", json=SMALL, headers=key)
        b = plain.post(f"{API}/jobs", json=SMALL, headers=key)
        assert (a.status_code, b.status_code) == (202, 200) and a.json()["id"] == b.json()["id"]
    restarted = secured.app.state.settings
    with TestClient(create_app(restarted, queue=queue)) as again_app:
        r = again_app.post(f"{API}/jobs", json=SMALL, headers={**_auth(ALICE), **key})
        assert r.status_code == 200 and r.json()["id"] == first.json()["id"]
    for bad in ("", "x" * 129, "key with spaces", "ключ".encode()):
        r = secured.post(f"{API}/jobs", json=SMALL, headers={**_auth(BOB), "Idempotency-Key": bad})
        assert r.status_code == 422, (bad, r.text)


def test_cors_is_off_unless_configured(settings, queue, client) -> None:  # type: ignore[no-untyped-def]
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    r = client.options(f"{API}/jobs", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    allowed = settings.model_copy(update={"cors_origins": "https://app.example"})
    with TestClient(create_app(allowed, queue=queue)) as cors:
        ok = cors.options(
            f"{API}/jobs",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        bad = cors.options(f"{API}/jobs", headers=origin)
        assert "access-control-allow-origin" not in bad.headers


def test_serve_refuses_an_open_non_loopback_bind(tmp_path: Path) -> None:
    def settings(**kw: object) -> Settings:
        return Settings(data_dir=tmp_path, **kw)

    for host in ("127.0.0.1", "::1", "localhost"):
        serve_cli.check_bind(settings(host=host))
    with pytest.raises(CLIError, match="--insecure-bind"):
        serve_cli.check_bind(settings(host="0.0.0.0"))
    with pytest.raises(CLIError, match="NADA_API_TOKENS"):
        serve_cli.check_bind(settings(host="192.168.1.5"))
    serve_cli.check_bind(settings(host="0.0.0.0"), insecure_bind=True)
    serve_cli.check_bind(settings(host="0.0.0.0", allow_insecure_bind=True))
    serve_cli.check_bind(settings(host="0.0.0.0", api_tokens=f"alice:{ALICE}"))


def test_serve_cli_exits_with_the_bind_refusal(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "NADA_DATA_DIR": str(tmp_path),
        "NADA_HOST": "0.0.0.0",
        "NADA_PORT": "1",
    }
    code = "import sys; from cli.main import main; sys.exit(main(['serve', '--no-worker']))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode != 0 and "refusing to serve on 0.0.0.0" in result.stderr


# (what, body overrides or path, expected status): the rows of docs/security.md's table.
BAD_BODIES = [
    ("empty prompt", {"source_text": ""}),
    ("blank prompt", {"target_text": "   "}),
    ("NUL in prompt", {"source_text": "photo\x00"}),
    ("control char (ESC) in prompt", {"target_text": "sketch\x1b[2J"}),
    ("prompt over 300 chars", {"target_text": "a" * 301}),
    ("prompt over 75 CLIP tokens", {"target_text": " ".join(["dog"] * 76)}),
    ("prompt not a string", {"source_text": 7}),
    ("unknown field", {"rm": "-rf"}),
    ("generator as a path", {"generator": "../../etc/passwd"}),
    ("generator as a URL", {"generator": "http://evil.example/g.pt"}),
    ("steps 0", {"steps": 0}),
    ("steps huge", {"steps": 10**12}),
    ("lr NaN", {"lr": "NaN"}),
    ("seed negative", {"seed": -1}),
    ("unknown clip model", {"clip_models": [{"name": "ViT-X-1"}]}),
]


@pytest.mark.parametrize(("what", "overrides"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_job_bodies_are_422(client, what: str, overrides: dict) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={**SMALL, **overrides})
    assert r.status_code == 422, (what, r.text)


def test_prompt_that_fits_clip_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    """66 words fit in the longest of the 80 templates (11 tokens of its own); 67 do not,
    as the engine's check says too."""
    r = client.post(f"{API}/jobs", json={**SMALL, "target_text": " ".join(["dog"] * 66)})
    assert r.status_code == 202, r.text
    r = client.post(f"{API}/jobs", json={**SMALL, "target_text": " ".join(["dog"] * 67)})
    assert r.status_code == 422, r.text


def test_bad_ids_steps_and_paths(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    outside = settings.data_dir.parent / "secret.png"
    outside.write_bytes(b"secret")
    for path, expected in [
        (f"/jobs/{job_id.upper()}", 404),
        (f"/jobs/{job_id}x", 404),
        ("/jobs/%2e%2e%2f%2e%2e%2fsecret", 404),
        (f"/jobs/{job_id}/samples/-1.png", 422),
        (f"/jobs/{job_id}/samples/99999999999999999999.png", 422),
        (f"/jobs/{job_id}/samples/..%2f..%2fsecret.png", 404),  # no such route
        (f"/jobs/{job_id}/samples/1e3.png", 422),
        ("/jobs?offset=-1", 422),
        ("/jobs?offset=99999999999999999999", 422),
        ("/jobs?limit=0", 422),
        (f"/jobs/{job_id}/events?after=-1", 422),
        (f"/jobs/{job_id}/events?after=99999999999999999999", 422),
    ]:
        r = client.get(API + path)
        assert r.status_code == expected, (path, r.status_code, r.text)
        assert r.content != b"secret"
    r = client.get(f"{API}/jobs/{job_id}/events", headers={"Last-Event-ID": "9" * 30})
    assert r.status_code == 422


@pytest.mark.parametrize("spec", [",", " , ,", " "])
def test_a_token_setting_that_names_no_token_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="names no token"):
        parse_tokens(spec)
    with pytest.raises(ValueError, match="names no token"):
        Settings(api_tokens=spec)


def test_one_token_under_two_names_is_refused() -> None:
    with pytest.raises(ValueError, match="'b' has the same token as 'a'") as info:
        parse_tokens(f"a:{ALICE},b:{ALICE}")
    assert ALICE not in str(info.value)
    with pytest.raises(ValueError, match="appears twice"):  # unnamed: the same owner twice
        parse_tokens(f"{ALICE},{ALICE}")

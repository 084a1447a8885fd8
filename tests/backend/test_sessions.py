"""The page's sign-in sessions and forgery refusal (docs/security.md), on SQLite and PostgreSQL.

The cookie holds a random session id, not the token; signing out, removing the token from
NADA_API_TOKENS and expiry each end a session on the service (a replayed cookie is 401);
one browser holds one session. A change the cookie signs must prove it comes from this
service's own page (Sec-Fetch-Site / Origin, and X-Nada-Request: 1), else 403; requests
with `Authorization: Bearer` are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from backend.main import create_app
from jobs import queue as job_queue
from jobs import sessions
from jobs.db.models import SignInSession
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}
ALICE, BOB = "alice-secret-token-0001", "bob-secret-token-00002"
OWN = "http://testserver"  # the TestClient's origin
PAGE = {"Origin": OWN, "X-Nada-Request": "1"}  # what the page's own fetches carry


def _with(settings: Settings, **update: object) -> Settings:
    return Settings.model_validate({**settings.model_dump(), **update})


@contextmanager
def _client(settings: Settings, queue, tokens: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(_with(settings, api_tokens=tokens), queue=queue)
    with TestClient(app) as client:
        yield client


def _sign_in(client: TestClient, token: str = ALICE) -> str:
    r = client.post(f"{API}/session", json={"token": token}, headers=PAGE)
    assert r.status_code == 200, r.text
    return r.cookies["nada_session"]


def _as_cookie(session_id: str) -> dict[str, str]:
    return {"Cookie": f"nada_session={session_id}"}


def _stored(settings: Settings) -> int:
    with session_scope(settings.db_url) as session:
        return int(session.scalar(select(func.count()).select_from(SignInSession)) or 0)


def test_the_cookie_is_a_session_id_and_sign_out_revokes_it(settings, queue) -> None:  # type: ignore[no-untyped-def]
    with _client(settings, queue, f"alice:{ALICE},bob:{BOB}") as client:
        session_id = _sign_in(client)
        assert session_id != ALICE and ALICE not in session_id and len(session_id) >= 43
        with session_scope(settings.db_url) as session:
            [row] = session.scalars(select(SignInSession)).all()
            assert session_id not in (row.id_sha256, row.token_sha256)  # stored hashed
            assert ALICE not in repr(row.__dict__) and row.owner == "alice"
            days = (row.expires_at - row.created_at) / timedelta(days=1)
            assert days == sessions.SESSION_DAYS
        client.cookies.clear()
        assert client.get(f"{API}/jobs", headers=_as_cookie(session_id)).status_code == 200
        assert client.get(f"{API}/jobs", headers=_as_cookie(ALICE)).status_code == 401  # token
        r = client.delete(f"{API}/session", headers={**PAGE, **_as_cookie(session_id)})
        assert r.status_code == 204 and 'nada_session=""' in r.headers["set-cookie"]
        # A copy of the cookie taken before signing out no longer opens anything.
        r = client.get(f"{API}/jobs", headers=_as_cookie(session_id))
        assert r.status_code == 401, r.text
        assert client.get(f"{API}/session", headers=_as_cookie(session_id)).json() == {
            "tokens": True,
            "owner": None,
        }
        assert _stored(settings) == 0


def test_removing_the_token_revokes_its_sessions(settings, queue) -> None:  # type: ignore[no-untyped-def]
    with _client(settings, queue, f"alice:{ALICE},bob:{BOB}") as client:
        alice, bob = _sign_in(client), _sign_in(client, BOB)
    # The same database, restarted without alice's token.
    with _client(settings, queue, f"bob:{BOB}") as client:
        assert client.get(f"{API}/jobs", headers=_as_cookie(alice)).status_code == 401
        assert client.get(f"{API}/jobs", headers=_as_cookie(bob)).status_code == 200
    later = _with(settings, api_tokens=f"bob:{BOB}")
    job_queue.housekeeping(later)  # the reaper's pass deletes the orphaned session
    assert _stored(settings) == 1
    # Putting the token back does not revive what was revoked.
    with _client(settings, queue, f"alice:{ALICE},bob:{BOB}") as client:
        assert client.get(f"{API}/jobs", headers=_as_cookie(alice)).status_code == 401


def test_an_expired_session_is_refused_and_housekeeping_deletes_it(settings, queue) -> None:  # type: ignore[no-untyped-def]
    tokens = f"alice:{ALICE}"
    with _client(settings, queue, tokens) as client:
        session_id = _sign_in(client)
        client.cookies.clear()
        assert client.get(f"{API}/jobs", headers=_as_cookie(session_id)).status_code == 200
        with session_scope(settings.db_url) as session:
            session.execute(
                update(SignInSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert client.get(f"{API}/jobs", headers=_as_cookie(session_id)).status_code == 401
    job_queue.housekeeping(_with(settings, api_tokens=tokens))
    assert _stored(settings) == 0


def test_one_active_session_per_browser(settings, queue) -> None:  # type: ignore[no-untyped-def]
    with _client(settings, queue, f"alice:{ALICE},bob:{BOB}") as client:
        first = _sign_in(client)
        second = _sign_in(client, BOB)  # the browser sends `first` along: it is ended
        assert first != second and client.cookies["nada_session"] == second
        client.cookies.clear()
        assert client.get(f"{API}/jobs", headers=_as_cookie(first)).status_code == 401
        assert client.get(f"{API}/session", headers=_as_cookie(second)).json()["owner"] == "bob"
        # Two sign-in cookies in one request (one tossed in for another path or a parent
        # domain): neither counts.
        third = _sign_in(client)
        client.cookies.clear()
        both = {"Cookie": f"nada_session={third}; nada_session={second}"}
        r = client.get(f"{API}/jobs", headers=both)
        assert r.status_code == 401 and "two 'nada_session' cookies" in r.json()["detail"]
        assert client.get(f"{API}/session", headers=both).json()["owner"] is None


@pytest.mark.parametrize(
    "forged",
    [
        {"Origin": "http://127.0.0.1:9999", "X-Nada-Request": "1"},  # this host, another port
        {"Origin": "http://evil.example", "X-Nada-Request": "1"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver:81", "X-Nada-Request": "1"},
        {"Sec-Fetch-Site": "cross-site", "X-Nada-Request": "1"},
        {"Origin": "null", "X-Nada-Request": "1"},  # a sandboxed frame, a data: URL
        {"X-Nada-Request": "1"},  # no word of where it came from
        {"Origin": OWN},  # a form or a no-cors fetch cannot add X-Nada-Request
        {"Sec-Fetch-Site": "same-origin", "Origin": OWN},
        {"Origin": OWN, "X-Nada-Request": "0"},
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()),
)
def test_a_change_signed_by_the_cookie_needs_proof_of_origin(settings, queue, forged) -> None:  # type: ignore[no-untyped-def]
    with _client(settings, queue, f"alice:{ALICE}") as client:
        _sign_in(client)
        r = client.post(f"{API}/jobs", json=SMALL, headers=PAGE)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        for method, path in [
            ("post", f"/jobs/{job_id}/cancel"),
            ("delete", f"/jobs/{job_id}"),
            ("post", "/jobs"),
            ("delete", "/session"),
        ]:
            body = SMALL if path == "/jobs" else None
            r = client.request(method, API + path, headers=forged, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert "a signed-in page's change must" in r.json()["detail"]
        # The forged form's own body, as a browser sends it (enctype=text/plain).
        r = client.post(
            f"{API}/jobs/{job_id}/cancel",
            content=b"x=1",
            headers={**forged, "Content-Type": "text/plain"},
        )
        assert r.status_code == 403
        # Nothing happened: still signed in, the job still queued, no second job.
        assert client.get(f"{API}/jobs/{job_id}").json()["status"] == "queued"
        assert client.get(f"{API}/jobs").json()["count"] == 1
        # Signing this browser in from another page is refused too (login forgery).
        r = client.post(f"{API}/session", json={"token": ALICE}, headers=forged)
        assert r.status_code == 403 and "set-cookie" not in r.headers
        # The page itself: a browser's same-origin fetch.
        page = {"Sec-Fetch-Site": "same-origin", "Origin": OWN, "X-Nada-Request": "1"}
        r = client.post(f"{API}/jobs/{job_id}/cancel", headers=page)
        assert r.status_code == 200 and r.json()["status"] == "canceled"


def test_a_proxy_origin_is_trusted_when_configured(settings, queue) -> None:  # type: ignore[no-untyped-def]
    proxied = {"Origin": "https://nada.example.org", "X-Nada-Request": "1"}
    with _client(settings, queue, f"alice:{ALICE}") as client:
        _sign_in(client)
        assert client.post(f"{API}/jobs", json=SMALL, headers=proxied).status_code == 403
    trusted = _with(settings, trusted_origins="https://nada.example.org/, http://other:8080")
    app = create_app(_with(trusted, api_tokens=f"alice:{ALICE}"), queue=queue)
    with TestClient(app) as client:
        _sign_in(client)
        assert client.post(f"{API}/jobs", json=SMALL, headers=proxied).status_code == 202
        # A browser that says the request is not same-origin is believed over the list.
        r = client.post(
            f"{API}/jobs", json=SMALL, headers={**proxied, "Sec-Fetch-Site": "same-site"}
        )
        assert r.status_code == 403


def test_header_token_clients_are_unaffected(settings, queue) -> None:  # type: ignore[no-untyped-def]
    with _client(settings, queue, f"alice:{ALICE}") as client:
        auth = {"Authorization": f"Bearer {ALICE}"}
        for extra in ({}, {"Origin": "http://127.0.0.1:9999"}, {"Sec-Fetch-Site": "cross-site"}):
            r = client.post(f"{API}/jobs", json=SMALL, headers={**auth, **extra})
            assert r.status_code == 202, (extra, r.text)
            r = client.post(f"{API}/jobs/{r.json()['id']}/cancel", headers={**auth, **extra})
            assert r.status_code == 200, (extra, r.text)
        # The header wins over a cookie, and a cookie-less script needs no Origin at all.
        _sign_in(client)
        r = client.post(f"{API}/jobs", json=SMALL, headers={**auth, "Origin": "http://x.example"})
        assert r.status_code == 202
        # Reading with the cookie needs no proof (an <img>, a download, an event stream).
        assert client.get(f"{API}/jobs").status_code == 200


def test_without_tokens_no_check_and_no_session(client) -> None:  # type: ignore[no-untyped-def]
    """A single-user service (no tokens) has no cookie to forge with: nothing changes."""
    r = client.post(f"{API}/jobs", json=SMALL, headers={"Origin": "http://127.0.0.1:9999"})
    assert r.status_code == 202
    r = client.post(f"{API}/session", json={"token": ALICE}, headers={"Origin": "http://x.example"})
    assert r.status_code == 200 and "set-cookie" not in r.headers

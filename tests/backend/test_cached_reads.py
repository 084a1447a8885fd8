"""The outermost layer (backend/api/cached_reads.py): a poll the view cache holds is
answered before FastAPI, byte for byte (status, body, headers) as the route answers the
same hit, for a finished job, a queued one and a list, as 200, 304 and HEAD; whatever it
cannot judge without the app (a sign-in cookie, an unknown token, a cross-origin request,
a body) goes to the app."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from backend.api import cached_reads
from backend.api.routes import jobs as job_routes
from backend.api.view_cache import DETAIL
from backend.main import create_app
from jobs.settings import Settings
from tests.backend.test_view_cache import ALICE, API, BOB, SMALL, _cached, _succeeded_job

PAGE = {"X-Nada-Request": "1", "Sec-Fetch-Site": "same-origin"}


def _configured(settings: Settings, **changes: Any) -> Settings:
    # A slow hub: entries (live ones included) stay fresh through each test's polls.
    return Settings.model_validate({**settings.model_dump(), "sse_poll_seconds": 5.0, **changes})


def _comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "server"))
    return r.status_code, r.content, headers


class _RouteCalls:
    """Counts the GETs that reached the routes (the view and list reads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        for name in ("read_cached_job_view", "answer_cached"):
            original = getattr(job_routes, name)

            async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.count += 1
                return await _original(*args, **kwargs)

            monkeypatch.setattr(job_routes, name, counted)


def test_a_hit_is_answered_before_fastapi_as_the_route_answers_it(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(_configured(settings), queue=queue)) as client:
        finished = _succeeded_job(client, settings)
        queued = client.post(f"{API}/jobs", json=SMALL).json()["id"]
        urls = [f"{API}/jobs/{finished}", f"{API}/jobs/{queued}", f"{API}/jobs?limit=5"]
        for url in urls:
            _cached(client, url)
        calls = _RouteCalls(monkeypatch)
        front = {}
        for url in urls:
            etag = client.get(url).headers["etag"]
            front[url] = [
                _comparable(client.get(url)),
                _comparable(client.get(url, headers={"If-None-Match": etag})),
                _comparable(client.head(url)),
            ]
        assert calls.count == 0, "a hit went through FastAPI"
        assert [answers[1][0] for answers in front.values()] == [304] * 3

        # The same requests with this layer stepping aside: the route answers the same hits.
        async def step_aside(scope: Any, headers: Any) -> None:
            return None

        monkeypatch.setattr(cached_reads, "_lookup", step_aside)
        for url in urls:
            etag = client.get(url).headers["etag"]
            routed = [
                _comparable(client.get(url)),
                _comparable(client.get(url, headers={"If-None-Match": etag})),
                _comparable(client.head(url)),
            ]
            assert routed == front[url], url
        assert calls.count == 3 * 4


def test_what_only_the_app_can_judge_goes_to_the_app(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = _configured(
        settings, api_tokens=f"alice:{ALICE},bob:{BOB}", cors_origins="https://page.example"
    )
    alice = {"Authorization": f"Bearer {ALICE}"}
    with TestClient(create_app(configured, queue=queue)) as client:
        job_id = client.post(f"{API}/jobs", json=SMALL, headers=alice).json()["id"]
        url = f"{API}/jobs/{job_id}"
        _cached(client, url, alice)
        calls = _RouteCalls(monkeypatch)
        assert client.get(url, headers=alice).status_code == 200
        assert calls.count == 0
        # Another token: the route's 404; no token or a wrong scheme: the app's 401 (from
        # its token check, before the route).
        assert client.get(url, headers={"Authorization": f"Bearer {BOB}"}).status_code == 404
        assert calls.count == 1
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": f"Basic {ALICE}"}).status_code == 401
        # A cross-origin request: the CORS middleware's headers come with the answer.
        r = client.get(url, headers={**alice, "Origin": "https://page.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://page.example"
        # A GET with a body, and a sign-in cookie's caller (its session is a row).
        assert client.request("GET", url, headers=alice, content=b"x").status_code == 200
        session = client.post(f"{API}/session", json={"token": ALICE}, headers=PAGE)
        cookie = {"Cookie": f"nada_session={session.cookies['nada_session']}"}
        client.cookies.clear()
        assert client.get(url, headers=cookie).status_code == 200
        assert calls.count == 4


def test_a_poll_of_an_entry_being_read_again_waits_for_that_read(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the route reads an aged-out entry again, a poll of it waits here for that read
    and takes its answer (it does not go through FastAPI to wait there)."""
    with TestClient(create_app(_configured(settings), queue=queue)) as client:
        job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
        url = f"{API}/jobs/{job_id}"
        _cached(client, url)
        views = client.app.state.event_hub.views  # type: ignore[attr-defined]
        key = (DETAIL, job_id)
        entry = views.lookup(*key, None)
        entry.confirmed_at -= 60  # aged out, still held
        reading = client.portal.call(anyio.Event)  # type: ignore[union-attr]
        views.reading[key] = reading
        fresh = replace(entry, body=entry.body.replace(b'"queued"', b'"queued" '))

        def the_read_ends() -> None:
            time.sleep(0.3)
            ticket = views.begin()
            assert views.store(ticket, *key, replace(fresh, confirmed_at=ticket.started))
            client.portal.call(reading.set)  # type: ignore[union-attr]

        calls = _RouteCalls(monkeypatch)
        reader = threading.Thread(target=the_read_ends)
        reader.start()
        r = client.get(url)
        reader.join()
        assert r.status_code == 200 and r.content == fresh.body and calls.count == 0

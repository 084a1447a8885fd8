"""Webhooks through the API (tests/backend's client on SQLite and PostgreSQL): receivers
refused at submission (SSRF), the secret and its rotation, and a job's deliveries made from
its events, sent by the dispatcher to a real receiver on loopback, retried, signed.

The same through real worker and API processes, with a killed API, and in the page:
tests/frontend/test_page_webhook.py."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from backend.webhook_dispatcher import WebhookDispatcher
from jobs import store
from jobs.db.session import get_sessionmaker
from jobs.settings import Settings
from jobs.webhooks import outbox, signing

JOB = {"source_text": "photo", "target_text": "sketch", "generator": "random-32"}


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "http://93.184.216.34/hook",  # plain http
    ],
)
def test_receivers_the_service_must_not_call_are_422_at_submission(client, url: str) -> None:
    before = client.get("/api/v1/jobs").json()["count"]
    res = client.post("/api/v1/jobs", json={**JOB, "webhook": url})
    assert res.status_code == 422, res.text
    (error,) = res.json()["detail"]
    assert error["loc"] == ["body", "webhook"] and error["msg"].startswith("webhook ")
    assert client.get("/api/v1/jobs").json()["count"] == before


def test_webhook_fields_are_checked_on_every_submission(client) -> None:
    res = client.post("/api/v1/jobs", json={**JOB, "webhook_events": ["completed"]})
    assert res.status_code == 422 and "needs a webhook" in res.text
    res = client.post(
        "/api/v1/jobs",
        json={**JOB, "webhook": "https://93.184.216.34/", "webhook_events": ["finished"]},
    )
    assert res.status_code == 422 and "webhook_events" in res.text
    res = client.post(
        "/api/v1/sweeps",
        json={"base": {**JOB, "webhook": "https://10.0.0.1/"}, "grid": {"layers": [1, 2]}},
    )
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "webhook"]
    res = client.post(
        "/api/v1/sweeps",
        json={"base": JOB, "grid": {"layers": [1, 2]}, "webhook": "https://10.0.0.1/"},
    )
    assert res.status_code == 422 and "not public" in res.text


def test_the_secret_is_made_once_and_rotates(client) -> None:
    first = client.get("/api/v1/webhook-secret").json()
    assert first["secret"].startswith("whsec_")
    assert client.get("/api/v1/webhook-secret").json()["secret"] == first["secret"]
    rotated = client.post("/api/v1/webhook-secret/rotate").json()
    assert rotated["secret"] != first["secret"] and rotated["previous_secret"] == first["secret"]


# -- deliveries from events, with a real receiver -------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers: list[int]
    got: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), body))
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"answers": [], "got": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/nada", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allowed_hosts": "127.0.0.1",
            "webhook_allow_http": True,
            "webhook_retry_seconds": "0.01,0.01,0.01",
            "webhook_timeout_seconds": 2.0,
            "webhook_dispatch": False,  # the test sends them itself, round by round
        }
    )


@pytest.fixture
def loopback_client(loopback_settings: Settings, queue):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app(loopback_settings, queue=queue)) as test_client:
        yield test_client


def _events(settings: Settings, job_id: str, kinds: list[str]) -> None:
    with get_sessionmaker(settings.db_url)() as session, session.begin():
        for kind in kinds:
            store.add_event(session, job_id=job_id, kind=kind, attempt=1, data={})


def _send_due(settings: Settings) -> list[str]:
    """One dispatcher round until nothing is due (the retries' waits are 10 ms)."""
    dispatcher = WebhookDispatcher(settings)
    states: list[str] = []
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while datetime.now(UTC) < deadline:
        with get_sessionmaker(settings.db_url)() as session, session.begin():
            claimed = outbox.claim_due(session, now=datetime.now(UTC) + timedelta(seconds=1))
        if not claimed:
            with get_sessionmaker(settings.db_url)() as session:
                if outbox.pending_count(session) == 0:
                    return states
            anyio.run(anyio.sleep, 0.02)
            continue
        states += [dispatcher.deliver(item) for item in claimed]
    raise AssertionError("deliveries still pending")


def test_events_become_signed_deliveries_retried_until_a_2xx(
    loopback_client, loopback_settings: Settings, receiver
) -> None:
    url, handler = receiver
    res = loopback_client.post(
        "/api/v1/jobs",
        json={**JOB, "webhook": url, "webhook_events": ["start", "progress", "completed"]},
    )
    assert res.status_code == 202, res.text
    job = res.json()
    assert job["webhook"] == {"url": url, "events": ["start", "progress", "completed"]}
    # a worker's events: started, two sample steps in a row, then success
    _events(loopback_settings, job["id"], ["started", "sample", "sample", "succeeded"])
    handler.answers = [200, 200, 500, 500, 200]  # start, progress, completed x3
    _send_due(loopback_settings)

    secret = loopback_client.get("/api/v1/webhook-secret").json()["secret"]
    kinds = [json.loads(body)["type"] for _, body in handler.got]
    assert kinds == ["job.start", "job.progress", "job.completed", "job.completed", "job.completed"]
    completed = [(h, b) for h, b in handler.got if json.loads(b)["type"] == "job.completed"]
    assert len({h["webhook-id"] for h, _ in completed}) == 1  # one message, three attempts
    assert len({b for _, b in completed}) == 1  # the body is fixed at the first attempt
    for headers, body in handler.got:
        signing.verify(
            secret, headers["webhook-id"], headers["webhook-timestamp"],
            headers["webhook-signature"], body,
        )  # fmt: skip
        assert json.loads(body)["data"]["id"] == job["id"]

    deliveries = loopback_client.get(f"/api/v1/jobs/{job['id']}/deliveries").json()["data"]
    assert [(d["event"], d["state"]) for d in deliveries] == [
        ("start", "delivered"), ("progress", "delivered"), ("completed", "delivered"),
    ]  # fmt: skip
    assert [a["status"] for a in deliveries[-1]["attempts"]] == [500, 500, 200]
    assert deliveries[-1]["attempts"][0]["error"] == "answered 500"


def test_a_receiver_that_never_answers_2xx_is_given_up_and_recorded(
    loopback_client, loopback_settings: Settings, receiver
) -> None:
    url, handler = receiver
    job = loopback_client.post("/api/v1/jobs", json={**JOB, "webhook": url}).json()
    _events(loopback_settings, job["id"], ["started", "failed"])  # default: completed only
    handler.answers = [503] * 10
    _send_due(loopback_settings)
    (only,) = loopback_client.get(f"/api/v1/jobs/{job['id']}/deliveries").json()["data"]
    assert only["event"] == "completed" and only["state"] == "failed"
    assert len(only["attempts"]) == 4  # the first try and the three retries of the setting
    assert len(handler.got) == 4


def test_a_claimed_delivery_is_not_claimed_twice(loopback_client, loopback_settings) -> None:
    job = loopback_client.post(
        "/api/v1/jobs", json={**JOB, "webhook": "http://127.0.0.1:9/x"}
    ).json()
    _events(loopback_settings, job["id"], ["succeeded"])
    maker = get_sessionmaker(loopback_settings.db_url)
    now = datetime.now(UTC)
    with maker() as session, session.begin():
        first = outbox.claim_due(session, now=now)
    with maker() as session, session.begin():
        second = outbox.claim_due(session, now=now)
    assert len(first) == 1 and second == []
    with maker() as session, session.begin():  # a crashed dispatcher's lease passes
        later = outbox.claim_due(session, now=now + timedelta(minutes=5))
    assert [c.id for c in later] == [first[0].id]

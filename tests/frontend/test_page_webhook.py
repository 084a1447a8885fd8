"""Webhooks end to end, and in the page: `nada serve` (the API with its dispatcher, and a
real local worker) runs a tiny job whose receiver, a real HTTP server on loopback (allowed
by a test setting), answers 500 twice and then 200: three attempts of one message, every
signature valid, and the job page's Webhook card says so. A second job's delivery is still
failing when the API process is killed (SIGKILL, its whole process group); the restarted
service delivers it, the same message, from the outbox. One service for all of it: the
slow part is starting it."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.webhooks import signing
from tests.frontend.conftest import running_service

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.timeout(900)]

TINY = {
    "source_text": "photo",
    "target_text": "sketch",
    "generator": "random-32",
    "clip_models": [{"name": "nada-tiny:random", "weight": 1}],
    "steps": 2,
    "batch_size": 1,
    "sample_every": 1,
    "probe_batch": 2,
    "n_samples": 1,
    "score_latents": 0,
}
ENV = {
    "NADA_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "NADA_WEBHOOK_ALLOW_HTTP": "true",
    "NADA_WEBHOOK_RETRY_SECONDS": ",".join(["0.5"] * 2 + ["1"] * 60),  # a minute of retries
    "NADA_WEBHOOK_POLL_SECONDS": "0.2",
    "NADA_WEBHOOK_TIMEOUT_SECONDS": "2",
}
TIMEOUT_S = 120


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers each path and message type from its script (then 200), 500 for a path that
    is down, and keeps what came."""

    scripts: dict[str, list[int]]
    down: set[str]
    got: list[tuple[str, dict[str, str], bytes]]
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        with cls.lock:
            cls.got.append((self.path, dict(self.headers), body))
            script = cls.scripts.get(f"{self.path} {json.loads(body)['type']}") or []
            status = 500 if self.path in cls.down else (script.pop(0) if script else 200)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass

    @classmethod
    def at(cls, path: str) -> list[tuple[dict[str, str], dict]]:
        with cls.lock:
            return [(h, json.loads(b)) for p, h, b in cls.got if p == path]


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"scripts": {}, "down": set(), "got": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def call(svc, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        svc.api(path), data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def wait_for(what: str, check, svc) -> object:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen:\n{svc.log_tail()}")


def test_deliveries_retry_sign_show_in_the_page_and_survive_a_killed_api(
    page, tmp_path: Path, receiver
) -> None:
    base, handler = receiver
    handler.scripts["/first job.completed"] = [500, 500]
    handler.down.add("/second")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_service(data_dir, env=ENV) as svc:
        secret = call(svc, "GET", "webhook-secret")["secret"]
        first = call(svc, "POST", "jobs", {**TINY, "webhook": f"{base}/first",
                                            "webhook_events": ["start", "completed"]})  # fmt: skip
        second = call(svc, "POST", "jobs", {**TINY, "webhook": f"{base}/second"})
        completed = wait_for(
            "three attempts of the first job's completion",
            lambda: (
                len([m for _, m in handler.at("/first") if m["type"] == "job.completed"]) >= 3
                and handler.at("/first")
            ),
            svc,
        )
        kinds = [m["type"] for _, m in completed]
        assert kinds == ["job.start", "job.completed", "job.completed", "job.completed"]
        done = [(h, m) for h, m in completed if m["type"] == "job.completed"]
        assert len({h["webhook-id"] for h, _ in done}) == 1
        assert {m["data"]["status"] for _, m in done} == {"succeeded"}
        assert {m["data"]["id"] for _, m in completed} == {first["id"]}
        for path, headers, body in handler.got:
            if path == "/first":
                signing.verify(secret, headers["webhook-id"], headers["webhook-timestamp"],
                               headers["webhook-signature"], body)  # fmt: skip
        deliveries = call(svc, "GET", f"jobs/{first['id']}/deliveries")["data"]
        assert [a["status"] for a in deliveries[-1]["attempts"]] == [500, 500, 200]

        # The job page's Webhook card: where the events go and how each delivery fared.
        page.goto(f"{svc.url}#/jobs/{first['id']}")
        card = page.get_by_role("region", name="Webhook")
        card.wait_for()
        assert f"{base}/first" in card.locator("[data-role=webhook-url]").inner_text()
        done_row = card.locator("li[data-event=completed][data-state=delivered]")
        done_row.wait_for(timeout=60_000)
        assert "3 attempts" in done_row.inner_text() and "last: 200" in done_row.inner_text()
        assert card.locator("li[data-event=start][data-state=delivered]").count() == 1

        wait_for("a failed attempt for the second job", lambda: handler.at("/second"), svc)
        (pending,) = call(svc, "GET", f"jobs/{second['id']}/deliveries")["data"]
        assert pending["state"] == "pending"
        os.killpg(svc.pid, signal.SIGKILL)  # the API, its dispatcher and worker, at once
        wait_for("the service to die", lambda: not _alive(svc.pid), svc)
    tries_before = len(handler.at("/second"))
    handler.down.clear()  # the receiver is back

    with running_service(data_dir, env=ENV) as svc:
        delivered = wait_for(
            "the second job's delivery after the restart",
            lambda: (
                (d := call(svc, "GET", f"jobs/{second['id']}/deliveries")["data"])
                and d[0]["state"] == "delivered"
                and d[0]
            ),
            svc,
        )
        assert delivered["id"] == pending["id"]  # the same message, from the outbox
        assert delivered["attempts"][-1]["status"] == 200
        assert len(delivered["attempts"]) > tries_before >= 1
        ids = {h["webhook-id"] for h, _ in handler.at("/second")}
        assert ids == {pending["id"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"

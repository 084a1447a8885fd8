"""The job page shows where a job's webhook goes and how each delivery fared, against the
real service (its own `nada serve`, allowed to call a receiver on loopback): a completion
answered 500 once and then 200 reads "delivered, 2 attempts, last: 200"."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.backend.test_webhooks_e2e import ENV, TINY
from tests.frontend.conftest import running_service

pytestmark = pytest.mark.browser


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_webhook_card_shows_each_delivery(page, tmp_path: Path) -> None:
    handler = type("Handler", (_Receiver,), {"answers": [500]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    try:
        with running_service(data_dir, env=ENV) as svc:
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            req = urllib.request.Request(
                svc.api("jobs"),
                data=json.dumps({**TINY, "webhook": url}).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as res:
                job = json.load(res)
            page.goto(f"{svc.url}#/jobs/{job['id']}")
            card = page.get_by_role("region", name="Webhook")
            card.wait_for()
            assert url in card.locator("[data-role=webhook-url]").inner_text()
            done = card.locator("li[data-event=completed][data-state=delivered]")
            done.wait_for(timeout=120_000)
            text = done.inner_text()
            assert "2 attempts" in text and "last: 200" in text
    finally:
        server.shutdown()
        server.server_close()

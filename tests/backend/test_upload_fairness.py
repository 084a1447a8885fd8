"""One token cannot lock the others out of the uploads (issue 22, item 5), on SQLite and
PostgreSQL, through the real app with two tokens (alice, bob).

Pass criteria:
- a token holds at most ceil(NADA_MAX_CONCURRENT_VALIDATIONS / 2) validation slots: while
  alice holds hers (her checks running, or her own concurrent requests), her next upload on
  every route is 429 with Retry-After naming the setting, and bob's uploads are served
  (POST /images 201, /inversions 202, /generators 201);
- each token has its own NADA_UPLOADS_PER_MINUTE over the three upload routes together,
  refused uploads counted: past it 429 with Retry-After naming the setting; bob unaffected;
- the pixels decoded at once in the process stay within NADA_DECODE_PIXEL_BUDGET: an image
  that would pass it beside a decode in progress waits its turn and is then served; one
  that waits too long is 429 with Retry-After naming the setting, nothing stored; alone,
  any image within NADA_MAX_PHOTO_PIXELS is decoded.
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend import generator_validation
from backend.main import create_app
from backend.validation_slots import DECODES, VALIDATIONS, token_share
from jobs.settings import Settings

from .test_inversions_api import _png  # type: ignore[import-not-found]

API = "/api/v1"
ALICE, BOB = "alice-fairness-token-01", "bob-fairness-token-0002"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _app(settings: Settings, queue: Any, **update: Any) -> TestClient:
    settings = settings.model_copy(
        update={"api_tokens": f"alice:{ALICE},bob:{BOB}", "max_active_jobs": 0, **update}
    )
    settings = Settings.model_validate(settings.model_dump())  # SecretStr, validators
    return TestClient(create_app(settings, queue=queue))


@pytest.fixture
def fair(settings: Settings, queue: Any):  # type: ignore[no-untyped-def]
    """Two tokens, the default 2 validation slots, no upload rate limit in the way."""
    with _app(settings, queue, max_concurrent_validations=2, uploads_per_minute=0) as client:
        yield client


def _image(client: TestClient, token: str, data: bytes | None = None) -> Any:
    part = ("file", ("a.png", io.BytesIO(data or _png()), "image/png"))
    return client.post(f"{API}/images", files=[part], headers=_auth(token))


def _inversion(client: TestClient, token: str, data: bytes | None = None) -> Any:
    files = {"file": ("me.png", io.BytesIO(data or _png()), "image/png")}
    return client.post(f"{API}/inversions", files=files, headers=_auth(token))


def _generator(client: TestClient, token: str, name: str, data: bytes) -> Any:
    files = {"file": ("g.pt", io.BytesIO(data), "application/octet-stream")}
    return client.post(f"{API}/generators", data={"name": name}, files=files, headers=_auth(token))


def _busy(response: Any, setting: str) -> str:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    detail = str(response.json()["detail"])
    assert setting in detail, detail
    return detail


def test_a_token_holds_at_most_half_the_slots() -> None:
    assert [token_share(limit) for limit in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]


def test_a_token_holding_its_share_leaves_the_other_slots_to_other_tokens(
    fair: TestClient, settings: Settings
) -> None:
    """Alice's check is running (her one slot of two): her next uploads on each route are
    429 naming the limit; bob's are served on each route."""
    with VALIDATIONS.take(2, owner="alice"):  # a check of alice's, in this process
        detail = _busy(_image(fair, ALICE), "NADA_MAX_CONCURRENT_VALIDATIONS")
        assert "this token" in detail
        _busy(_inversion(fair, ALICE), "NADA_MAX_CONCURRENT_VALIDATIONS")
        _busy(_generator(fair, ALICE, "alice-gen", b"PK\x03\x04 x"), "NADA_MAX_CONCURRENT")

        assert _image(fair, BOB).status_code == 201
        r = _inversion(fair, BOB)
        assert r.status_code == 202, r.text
    assert VALIDATIONS.running == 0
    assert _image(fair, ALICE).status_code == 201  # her slot is free again
    inversions = fair.get(f"{API}/inversions", headers=_auth(ALICE)).json()
    assert inversions["count"] == 0  # the refused ones created nothing


def test_one_tokens_flood_of_concurrent_uploads_leaves_anothers_served(
    fair: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice sends three generator uploads at once; her checks hang (the validator child is
    stood in for: a real one cannot be held mid-check). One runs, the other two are 429;
    bob's upload, sent while hers runs, is checked and stored (201). Before: alice's two
    took both slots and bob got 429 for as long as they ran."""
    started, release = threading.Event(), threading.Event()

    def child(args, **kwargs):  # type: ignore[no-untyped-def]
        if ".alice-" in Path(args[-1]).name:
            started.set()
            assert release.wait(120)  # past the test's own wait: its failure is the one shown
        Path(args[-1]).write_bytes(b"re-saved")
        answer = {"ok": True, "size": 8, "sha256": "0" * 64}
        return subprocess.CompletedProcess(args, 0, json.dumps(answer) + "\n", "")

    monkeypatch.setattr(generator_validation.subprocess, "run", child)
    zip_head = b"PK\x03\x04 weights"  # passes the in-process header check
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(_generator, fair, ALICE, f"alice-{i}", zip_head) for i in range(3)]
        try:
            assert started.wait(60)
            for _ in range(600):  # all but the running one answer without waiting for it
                if sum(f.done() for f in futures) >= 2:
                    break
                time.sleep(0.1)
            refused = [f.result() for f in futures if f.done()]
            assert len(refused) == 2, [r.status_code for r in refused]
            for r in refused:
                _busy(r, "NADA_MAX_CONCURRENT_VALIDATIONS")
            r = _generator(fair, BOB, "bob-0", zip_head)
            assert r.status_code == 201, r.text
        finally:
            release.set()
        codes = sorted(f.result().status_code for f in futures)
    assert codes == [201, 429, 429]
    assert VALIDATIONS.running == 0


def test_the_upload_rate_is_per_token_over_every_upload_route(
    settings: Settings, queue: Any
) -> None:
    with _app(settings, queue, uploads_per_minute=3) as client:
        assert _image(client, ALICE).status_code == 201
        assert _inversion(client, ALICE).status_code == 202
        assert _generator(client, ALICE, "junk", b"hello").status_code == 422  # counted too
        for r in (
            _image(client, ALICE),
            _inversion(client, ALICE),
            _generator(client, ALICE, "junk", b"hello"),
        ):
            detail = _busy(r, "NADA_UPLOADS_PER_MINUTE")
            assert "3 uploads in a minute" in detail
        assert _image(client, BOB).status_code == 201  # bob has his own
        assert _inversion(client, BOB).status_code == 202
        # Not an upload: other requests of alice's are not limited by it.
        assert client.get(f"{API}/inversions", headers=_auth(ALICE)).status_code == 200


def test_decoding_stays_within_the_pixel_budget(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decode of 6,000 pixels is in progress with a budget of 10,000: a 64x48 photo
    (3,072 pixels) is decoded beside it; a 100x100 one (10,000) waits its turn and is
    served once the other decode ends; one that waits too long is 429 naming the budget,
    nothing stored. Alone, the 100x100 one is decoded even with a budget below it."""
    big = _png(100, 100)
    with _app(settings, queue, decode_pixel_budget=10_000, uploads_per_minute=0) as client:
        with ThreadPoolExecutor(1) as pool:
            with DECODES.hold(10_000) as admit:
                admit(6_000)  # another request's image, being decoded
                assert _image(client, BOB, _png(64, 48)).status_code == 201  # fits beside
                waiting = pool.submit(_inversion, client, BOB, big)
                for _ in range(600):
                    if DECODES.waiting or waiting.done():
                        break
                    time.sleep(0.1)
                assert DECODES.waiting == 1 and not waiting.done()
            r = waiting.result(timeout=60)  # its turn came when the other decode ended
            assert r.status_code == 202, r.text

        monkeypatch.setattr(DECODES, "wait_s", 0.0)  # no patience: the refusal
        with DECODES.hold(10_000) as admit:
            admit(6_000)
            _busy(_inversion(client, ALICE, big), "NADA_DECODE_PIXEL_BUDGET")
            _busy(_image(client, ALICE, big), "NADA_DECODE_PIXEL_BUDGET")
        assert client.get(f"{API}/inversions", headers=_auth(ALICE)).json()["count"] == 0
        assert DECODES.in_use == 0 and DECODES.waiting == 0
    with _app(settings, queue, decode_pixel_budget=1_000, uploads_per_minute=0) as client:
        assert _image(client, ALICE, big).status_code == 201  # alone: always decoded
    assert DECODES.in_use == 0

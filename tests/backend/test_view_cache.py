"""The per-process cache of finished jobs' views (backend/api/view_cache.py) behind
GET /jobs/{id}, on SQLite and PostgreSQL: a cached answer is byte for byte the uncached
one, costs no database read, never goes to another token, and a change made through
another session (as another API process, a worker or the reaper would make it, with or
without an event) is seen within the hub's bound: no poll begun later than `max_age`
after the change shows the state before it."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from backend.api.job_views import DETAIL, public_job
from backend.api.view_cache import LIST, ViewCache
from backend.main import create_app
from jobs import leases, storage, store
from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}
ALICE, BOB = "alice-secret-token-0001", "bob-secret-token-00002"


def _settle(root: Path) -> None:
    """Date the job's folders back: a folder changed within the last seconds is not
    trusted by the cache (coarse mtimes), and these tests want it cached."""
    past = time.time() - 60
    for folder in (root, *(p for p in root.rglob("*") if p.is_dir())):
        os.utime(folder, (past, past))


def _succeeded_job(client: TestClient, settings: Settings, headers: Any = None) -> str:
    """A job that succeeded with samples at steps 2 and 4, its folders settled."""
    job_id = client.post(f"{API}/jobs", json=SMALL, headers=headers).json()["id"]
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
    assert claim is not None
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.adapted_path(root), b"weights")
    with session_scope(settings.db_url) as s:
        for step in (2, 4):
            rundir.write_bytes(rundir.sample_path(root, step), b"\x89PNG fake")
            leases.record_sample(s, job_id=job_id, attempt=claim.attempt, step=step)
        leases.finish_job(s, job_id=job_id, attempt=claim.attempt, status=JobStatus.succeeded)
    _settle(root)
    return job_id


def _views(client: TestClient) -> ViewCache:
    views: ViewCache = client.app.state.event_hub.views  # type: ignore[attr-defined]
    return views


def _cached(client: TestClient, url: str, headers: Any = None) -> Any:
    """GET `url` until the answer comes from the cache (the hub may drop a first entry
    stored while it read); that answer."""
    views = _views(client)
    deadline = time.monotonic() + 10
    while True:
        hits = views.hits
        r = client.get(url, headers=headers)
        if views.hits > hits:
            return r
        assert time.monotonic() < deadline, "never answered from the cache"
        time.sleep(0.01)


def _seen_within_bound(
    client: TestClient, url: str, changed_at: float, new: Any, bound: float | None = None
) -> None:
    """Poll `url` until `new(view)`; every poll begun more than `bound` (max_age unless
    said) after `changed_at` must show it, and once seen, the old state never comes back."""
    bound = _views(client).max_age if bound is None else bound
    deadline = changed_at + 10
    while True:
        began = time.monotonic()
        r = client.get(url)
        if new(r):
            break
        assert began <= changed_at + bound, f"old state {began - changed_at:.3f}s after"
        assert began < deadline
    for _ in range(20):
        assert new(client.get(url))


def test_a_cached_answer_is_the_uncached_one_and_reads_nothing(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slower hub than the fixture's (0.05 s): entries live 1.5 s between its reads, so
    # the polls below are hits however slowly this machine runs them.
    slow = Settings.model_validate({**settings.model_dump(), "sse_poll_seconds": 1.0})
    with TestClient(create_app(slow, queue=queue)) as client:
        _answers_from_the_cache(client, settings, monkeypatch)


def _answers_from_the_cache(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _succeeded_job(client, settings)
    url = f"{API}/jobs/{job_id}"
    first = client.get(url)
    hit = _cached(client, url)
    assert hit.status_code == 200 and hit.content == first.content
    assert hit.headers["etag"] == first.headers["etag"]
    assert hit.headers["content-type"] == first.headers["content-type"] == "application/json"
    with session_scope(settings.db_url) as s:  # the view as the route built it before
        job = s.get(Job, job_id)
        assert job is not None
        assert hit.content == public_job(s, settings, job).model_dump_json().encode()
    assert hit.json()["samples"] == [{"step": s, "url": f"{url}/samples/{s}.png"} for s in (2, 4)]

    def no_reads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cached poll read the database")

    monkeypatch.setattr(store, "get_job", no_reads)
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]
    assert client.head(url).headers["etag"] == first.headers["etag"]
    monkeypatch.undo()
    # A queued job's view is a live entry (its queue position and ETA move with other
    # jobs): answered for one hub interval after the read that made it, never extended.
    queued = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    assert _cached(client, f"{API}/jobs/{queued}").json()["status"] == "queued"
    entry = _views(client).lookup(DETAIL, queued, None)
    assert entry is not None and entry.live


@pytest.mark.parametrize("change", ["event", "no event", "deleted", "child", "files"])
def test_a_change_made_elsewhere_is_seen_within_the_bound(
    client: TestClient, settings: Settings, change: str
) -> None:
    job_id = _succeeded_job(client, settings)
    url = f"{API}/jobs/{job_id}"
    before = _cached(client, url).json()
    root = storage.job_dir(settings.jobs_dir, job_id)
    with session_scope(settings.db_url) as s:  # another session: another process's write
        if change == "event":  # a worker's late word, with its event (re-queued by the reaper)
            s.execute(update(Job).where(Job.id == job_id).values(status="queued"))
            store.add_event(s, job_id=job_id, kind="queued", attempt=1, data={})
        elif change == "no event":  # retention's mark (jobs/gc.py) makes no event
            s.execute(update(Job).where(Job.id == job_id).values(files_expired_at=store.utcnow()))
        elif change == "deleted":  # another API process's DELETE: no event is left
            store.delete_job(s, job_id=job_id)
        elif change == "child":  # another API process's POST /jobs/{id}/continue
            child = store.create_job(s, params=_params(before), parent_id=job_id)
    if change == "files":  # removed by hand: seen at once (the folders' mtimes)
        rundir.sample_path(root, 2).unlink()
    changed_at = time.monotonic()
    checks = {
        "event": lambda r: r.json()["status"] == "queued",
        "no event": lambda r: r.json()["files_expired"] is True,
        "deleted": lambda r: r.status_code == 404,
        "child": lambda r: r.json()["children"] == [child.id],
        "files": lambda r: [s["step"] for s in r.json()["samples"]] == [4],
    }
    if change == "files":
        assert checks["files"](client.get(url))
    _seen_within_bound(client, url, changed_at, checks[change])


def _params(view: dict[str, Any]) -> Any:
    from nada.params import AdaptParams

    return AdaptParams.from_dict(view["params"])


def test_this_process_sees_its_own_writes_at_once(client: TestClient, settings: Settings) -> None:
    """A continuation's parent lists its child, and a deleted job is gone, on the very next
    request (the hub's interval does not apply to this process's own writes)."""
    parent = _succeeded_job(client, settings)
    (storage.job_dir(settings.jobs_dir, parent) / rundir.RESUME).write_bytes(b"state")
    _settle(storage.job_dir(settings.jobs_dir, parent))
    url = f"{API}/jobs/{parent}"
    assert _cached(client, url).json()["children"] == []
    child = client.post(f"{url}/continue", json={"steps": 1})
    assert child.status_code == 202, child.text
    assert client.get(url).json()["children"] == [child.json()["id"]]
    _cached(client, url)
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def test_a_cached_view_never_goes_to_another_token(settings: Settings, queue: Any) -> None:
    configured = settings.model_copy(update={"api_tokens": f"alice:{ALICE},bob:{BOB}"})
    configured = Settings.model_validate(configured.model_dump())
    alice = {"Authorization": f"Bearer {ALICE}"}
    bob = {"Authorization": f"Bearer {BOB}"}
    with TestClient(create_app(configured, queue=queue)) as client:
        job_id = _succeeded_job(client, configured, alice)
        url = f"{API}/jobs/{job_id}"
        assert _cached(client, url, alice).status_code == 200
        for _ in range(3):
            r = client.get(url, headers=bob)
            assert r.status_code == 404 and job_id in r.json()["detail"]
        assert client.get(url).status_code == 401
        assert client.get(url, headers=alice).status_code == 200


def _entry(stamp: str = "s", confirmed_at: float = 0.0) -> Any:
    from backend.api.view_cache import CachedView

    return CachedView(
        body=b"{}", etag='"e"', owner="", kind="adapt", stamp=stamp, children=(),
        root=Path("/nonexistent/job"), files=(None, None, None, None),
        confirmed_at=confirmed_at,
    )  # fmt: skip


def test_a_read_that_raced_a_change_is_not_kept_and_entries_age_out() -> None:
    """The cache's rules without HTTP: a read begun before the hub dropped entries is not
    stored; an entry is answered only within max_age of the newest read that found it
    true; a row that changed, or vanished, drops it."""
    views = ViewCache(max_age=0.2)
    ticket = views.begin()
    views.invalidate(["other"])  # the hub saw a change while the request read
    assert not views.store(ticket, DETAIL, "a", _entry(confirmed_at=ticket.started))
    ticket = views.begin()
    assert views.store(ticket, DETAIL, "a", _entry(confirmed_at=ticket.started))
    assert views.lookup(DETAIL, "a", None) is not None
    assert views.lookup(DETAIL, "a", "someone") is None  # owner "" is not "someone"
    time.sleep(0.25)
    assert views.lookup(DETAIL, "a", None) is None and views.holds(DETAIL, "a")  # aged out
    views.confirm(time.monotonic(), {"a": "s"}, {})  # the hub read it again: unchanged
    assert views.lookup(DETAIL, "a", None) is not None
    views.confirm(time.monotonic(), {"a": "changed"}, {})
    assert not views.holds(DETAIL, "a")
    ticket = views.begin()
    views.store(ticket, DETAIL, "b", _entry(confirmed_at=ticket.started))
    views.confirm(time.monotonic(), {}, {})  # deleted
    assert not views.holds(DETAIL, "b")


@contextlib.contextmanager
def _elsewhere(settings: Settings) -> Iterator[Session]:
    """A session on an engine of its own: writes as another process makes them (this
    process's own engine tells its cache of each write: dropping_live_on_writes)."""
    engine = create_engine(settings.db_url)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _queued_job(client: TestClient, **overrides: Any) -> str:
    return str(client.post(f"{API}/jobs", json={**SMALL, **overrides}).json()["id"])


@pytest.mark.parametrize("change", ["position", "started", "heartbeat", "listed"])
def test_a_live_view_shows_another_process_change_within_one_interval(
    client: TestClient, settings: Settings, change: str
) -> None:
    """Queued and running jobs' views, and lists, are cached too, as live entries: a change
    made through another session (another API process's submission, a worker's claim and
    heartbeat, which has no event) shows within one hub interval (`live_age`), and a live
    entry is answered from the cache meanwhile."""
    views = _views(client)
    queued = _queued_job(client)
    url = f"{API}/jobs/{queued}"
    if change == "heartbeat":
        with session_scope(settings.db_url) as s:
            claim = leases.claim_job(
                s, job_id=queued, worker_id="t", lease_seconds=30, max_attempts=3
            )
        assert claim is not None
    if change == "listed":
        url = f"{API}/jobs?limit=5"
    before = _cached(client, url).json()
    with _elsewhere(settings) as s:  # another process's writes
        if change == "position":  # a job of higher priority submitted elsewhere goes first
            store.create_job(s, params=_params(before), priority=5)
        elif change == "started":  # a worker claims it (its event is what the hub reads)
            assert leases.claim_job(
                s, job_id=queued, worker_id="t", lease_seconds=30, max_attempts=3
            )
        elif change == "heartbeat":  # a worker's beat: a row change without an event
            beat = store.utcnow()
            s.execute(update(Job).where(Job.id == queued).values(heartbeat_at=beat))
        else:  # another API process's submission
            other = store.create_job(s, params=_params(before["data"][0]))
    changed_at = time.monotonic()
    checks = {
        "position": lambda r: r.json()["queue_position"] == before["queue_position"] + 1,
        "started": lambda r: r.json()["status"] == "running",
        "heartbeat": lambda r: r.json()["heartbeat_at"] != before["heartbeat_at"],
        "listed": lambda r: r.json()["data"][0]["id"] == other.id,
    }
    _seen_within_bound(client, url, changed_at, checks[change], bound=views.live_age)
    assert views.live_age < views.max_age


def test_lists_are_cached_per_caller_and_dropped_by_own_writes(
    settings: Settings, queue: Any
) -> None:
    """A list's entry is keyed by the caller and its query; this process's own submission
    or delete shows on the next request (no interval to wait)."""
    configured = settings.model_copy(update={"api_tokens": f"alice:{ALICE},bob:{BOB}"})
    configured = Settings.model_validate({**configured.model_dump(), "sse_poll_seconds": 5.0})
    alice = {"Authorization": f"Bearer {ALICE}"}
    bob = {"Authorization": f"Bearer {BOB}"}
    with TestClient(create_app(configured, queue=queue)) as client:
        mine = client.post(f"{API}/jobs", json=SMALL, headers=alice).json()["id"]
        url = f"{API}/jobs?limit=5"
        assert [j["id"] for j in _cached(client, url, alice).json()["data"]] == [mine]
        assert _cached(client, url, bob).json()["data"] == []  # bob's own entry
        assert client.get(url, headers=bob).json()["data"] == []
        assert client.get(f"{url}&offset=1", headers=alice).json()["data"] == []
        newer = client.post(f"{API}/jobs", json=SMALL, headers=alice).json()["id"]
        assert [j["id"] for j in client.get(url, headers=alice).json()["data"]] == [newer, mine]
        assert client.post(f"{API}/jobs/{newer}/cancel", headers=alice).status_code == 200
        assert client.get(url, headers=alice).json()["data"][0]["status"] == "canceled"
        assert client.delete(f"{API}/jobs/{newer}", headers=alice).status_code == 204
        assert [j["id"] for j in client.get(url, headers=alice).json()["data"]] == [mine]
        assert client.get(url).status_code == 401


def test_this_process_writes_drop_live_views_at_once(
    client: TestClient, settings: Settings
) -> None:
    """A write through this process's engine (a route, the reaper, a test playing the
    worker) drops the live entries as it commits: the next poll reads the database."""
    queued = _queued_job(client)
    url = f"{API}/jobs/{queued}"
    _cached(client, url)
    views = _views(client)
    with session_scope(settings.db_url) as s:
        assert leases.claim_job(s, job_id=queued, worker_id="t", lease_seconds=30, max_attempts=3)
    assert views.lookup(DETAIL, queued, None) is None
    assert client.get(url).json()["status"] == "running"
    with session_scope(settings.db_url) as s:  # a read commits nothing that drops
        s.get(Job, queued)
    _cached(client, url)
    with session_scope(settings.db_url) as s:
        s.execute(update(Job).where(Job.id == queued).values(heartbeat_at=store.utcnow()))
        s.rollback()  # rolled back: nothing changed
    assert views.lookup(DETAIL, queued, None) is not None


def test_a_live_entry_is_renewed_ahead_by_a_poll_and_none_waits(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past half its interval, the poll that finds a live entry still gets it, and the
    entry is read again in the background: the next polls see the new state from the
    cache, and no request reads the database itself (a list likewise)."""
    slow = Settings.model_validate({**settings.model_dump(), "sse_poll_seconds": 4.0})
    with TestClient(create_app(slow, queue=queue)) as client:
        views = _views(client)
        queued = _queued_job(client)
        reads: list[int] = []
        original = store.get_job

        def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append(1)
            return original(*args, **kwargs)

        for url, key in ((f"{API}/jobs/{queued}", queued), (f"{API}/jobs?limit=3", None)):
            before = _cached(client, url).content
            view, key = (DETAIL, queued) if key else (LIST, next(
                k for (v, k) in views._entries if v == LIST
            ))  # fmt: skip
            views._entries[(view, key)].confirmed_at -= 2.5  # past half of live_age 4
            with _elsewhere(settings) as s:  # another process: the hub would take 4 s
                s.execute(update(Job).where(Job.id == queued).values(heartbeat_at=store.utcnow()))
            reads.clear()
            monkeypatch.setattr(store, "get_job", counted)
            assert client.get(url).content == before  # still fresh: answered, renewal starts
            deadline = time.monotonic() + 10
            while client.get(url).content == before:
                assert time.monotonic() < deadline, "never renewed"
                time.sleep(0.02)
            monkeypatch.undo()
            assert views.lookup(view, key, None) is not None
            if view == DETAIL:
                assert len(reads) == 1  # the renewal's one read, in the background


def test_concurrent_polls_of_what_is_not_cached_yet_make_one_read(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty pollers of a list nobody read yet (a restart, a new query) wait for the first
    one's read instead of each reading: one read, everyone gets its answer."""
    slow = Settings.model_validate({**settings.model_dump(), "sse_poll_seconds": 4.0})
    with TestClient(create_app(slow, queue=queue)) as client:
        _queued_job(client)
        reads: list[int] = []
        original = store.list_jobs

        def slow_read(*args: Any, **kwargs: Any) -> Any:
            reads.append(1)
            time.sleep(0.3)
            return original(*args, **kwargs)

        monkeypatch.setattr(store, "list_jobs", slow_read)
        answers: list[int] = []

        def poll() -> None:
            answers.append(client.get(f"{API}/jobs?limit=7").status_code)

        pollers = [threading.Thread(target=poll) for _ in range(10)]
        for t in pollers:
            t.start()
        for t in pollers:
            t.join()
        assert answers == [200] * 10 and len(reads) == 1

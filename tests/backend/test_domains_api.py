"""Ready-made domains: GET /api/v1/domains, POST /domains/{name}/jobs, the worker's 'domain'
job (worker/ready_made.py through worker.attempts.run_job, the plain function behind the
Celery task) and a render of the finished job, on SQLite and PostgreSQL.

No real weights: a random-32 generator saved in the original authors' layout ({'g_ema':
state_dict}) is served from a loopback HTTP server and named by the env override
NADA_DOMAIN_<NAME> of a test entry whose base is random-32 (`add_domain`).

Pass criteria: the listing shows each domain's base, prompts, license and availability
(downloadable, then cached once pulled; manual when downloads are off, and then a job is
refused naming `name`); the job succeeds with an adapted.pt that loads at the base's size
and names its source, a render through it succeeds, a continuation is refused; the same
domain asked again answers the same job; a mirror that does not answer fails the job
fast as model_unavailable, with the message every download failure has.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.settings import Settings
from stylegan2 import domains
from stylegan2.domains import DomainInfo
from tests.stylegan2.conftest import QuietHandler, serve_directory
from worker.attempts import run_job

API = "/api/v1"
NAME = "test-tiny"
ENV = "NADA_DOMAIN_TEST_TINY"


@pytest.fixture(scope="module")
def served_domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a random-32 generator in rosinality layout, served on loopback."""
    import torch

    from stylegan2.checkpoint import random_generator

    folder = tmp_path_factory.mktemp("mirror")
    torch.save({"g_ema": random_generator(32, seed=7).generator.state_dict()}, folder / "tiny.pt")
    with serve_directory(folder, QuietHandler) as url:
        yield f"{url}/tiny.pt"


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, served_domain: str) -> DomainInfo:
    """A test entry (base random-32) in a copy of the table, its cache in tmp_path."""
    monkeypatch.setattr(domains.DOMAINS, "_entries", dict(domains.DOMAINS._entries))
    info = DomainInfo(
        name=NAME,
        filename="test-tiny.pt",
        description="a random-32 generator standing in for a published domain",
        url="https://example.invalid/tiny.pt",  # never used: the override names the mirror
        base="random-32",
        source_text="photo",
        target_text="sketch",
        license="test only",
        manual="built by the test",
    )
    domains.add_domain(info)
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ENV, served_domain)
    monkeypatch.delenv("NADA_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return info


def _listed(client: Any, name: str = NAME) -> dict[str, Any]:
    r = client.get(f"{API}/domains")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["data"])
    return {d["name"]: d for d in body["data"]}[name]


def _run(settings: Settings, job_id: str) -> None:
    run_job(job_id, settings=settings, worker_id="test-worker")


def test_the_builtin_entries_are_listed(client: Any) -> None:
    anime = _listed(client, "nada-anime")
    assert anime["base"] == "ffhq-1024" and anime["size"] == 1024
    assert (
        anime["url"] == "https://huggingface.co/rinong/stylegan-nada-models/resolve/main/anime.pt"
    )
    assert "NVIDIA Source Code License-NC" in anime["license"]
    assert anime["availability"] in ("downloadable", "manual")  # nothing is cached here


def test_a_domain_becomes_a_finished_job_that_renders(
    client: Any, settings: Settings, entry: DomainInfo
) -> None:
    from stylegan2.checkpoint import load_generator

    listed = _listed(client)
    assert listed["availability"] == "downloadable", listed
    assert (listed["base"], listed["size"], listed["target_text"]) == ("random-32", 32, "sketch")

    r = client.post(f"{API}/domains/{NAME}/jobs")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "domain" and job["params"] == {"domain": NAME, "generator": "random-32"}
    _run(settings, job["id"])
    done = client.get(f"{API}/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["checkpoint_url"], done

    adapted = load_generator(settings.jobs_dir / job["id"] / "adapted.pt")
    assert adapted.generator.size == 32
    assert adapted.metadata["source"] == f"ready-made: {NAME}"
    assert adapted.metadata["params"]["generator"] == "random-32"
    assert _listed(client)["availability"] == "cached"  # the download stayed in the cache
    download = client.get(done["checkpoint_url"])
    assert download.status_code == 200 and NAME in download.headers["content-disposition"]

    again = client.post(f"{API}/domains/{NAME}/jobs")
    assert again.status_code == 200 and again.json()["id"] == job["id"]

    render = client.post(f"{API}/jobs/{job['id']}/renders", json={"seeds": [1, 2]})
    assert render.status_code == 202, render.text
    _run(settings, render.json()["id"])
    view = client.get(f"{API}/renders/{render.json()['id']}").json()
    assert view["status"] == "succeeded", view
    assert client.get(view["image_url"]).headers["content-type"] == "image/png"

    continued = client.post(f"{API}/jobs/{job['id']}/continue", json={"steps": 2})
    assert continued.status_code == 404, continued.text  # not an adaptation: nothing to resume


def test_offline_the_listing_says_manual_and_a_job_is_refused(
    client: Any, entry: DomainInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NADA_OFFLINE", "1")
    listed = _listed(client)
    assert listed["availability"] == "manual" and "offline" in listed["availability_note"]
    r = client.post(f"{API}/domains/{NAME}/jobs")
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == "name"
    assert client.post(f"{API}/domains/no-such/jobs").status_code == 404


def test_a_mirror_that_does_not_answer_fails_fast_as_model_unavailable(
    client: Any, settings: Settings, entry: DomainInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(ENV, f"http://127.0.0.1:{port}/tiny.pt")
    r = client.post(f"{API}/domains/{NAME}/jobs")
    assert r.status_code == 202, r.text
    started = time.monotonic()
    _run(settings, r.json()["id"])
    assert time.monotonic() - started < 30
    failed = client.get(f"{API}/jobs/{r.json()['id']}").json()
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "model_unavailable", failed["error"]
    message = failed["error"]["message"]
    assert f"no copy of ready-made domain '{NAME}' and cannot download it" in message, message

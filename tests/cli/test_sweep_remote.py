"""`nada sweep --server URL`: the CLI submits its grid to a running service (a real uvicorn
server on loopback, the recording queue). Pass criteria: the service creates one job per
combination with the CLI's values; a grid the service refuses exits 2 with its message."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import main
from jobs.settings import Settings


@pytest.fixture
def server(settings: Settings, queue: Any) -> Iterator[str]:
    import uvicorn

    from backend.main import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, queue=queue), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")  # fmt: skip
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base
    instance.should_exit = True
    thread.join(10)


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_the_cli_submits_its_grid(
    server: str, queue: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--source", "photo", "--target", "sketch|oil painting", "--generator",
            "random-64", "--steps", "150,300", "--server", server]  # fmt: skip
    assert _exit(argv) == 0
    out = capsys.readouterr().out
    assert "4 jobs queued" in out
    sweep_id = out.split()[1].rstrip(":")
    sweep = httpx.get(f"{server}/api/v1/sweeps/{sweep_id}").json()
    combos = [(j["params"]["target_text"], j["params"]["steps"]) for j in sweep["jobs"]]
    assert combos == [
        ("sketch", 150),
        ("sketch", 300),
        ("oil painting", 150),
        ("oil painting", 300),
    ]
    assert queue.sent == [j["id"] for j in sweep["jobs"]]


def test_a_refusal_from_the_service_exits_2(
    server: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--source", "photo", "--target", "sketch", "--generator",
            "not-registered-here", "--steps", "1,2", "--server", server]  # fmt: skip
    assert _exit(argv) == 2
    err = capsys.readouterr().err
    assert "the service refused the sweep (422)" in err and "not-registered-here" in err


def test_example_images_are_uploaded_and_every_job_names_them(
    server: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--target-images with --server: the CLI uploads the pictures (POST /images) and the
    sweep's jobs name the ids the service stored them under, each job with its own copies."""
    from PIL import Image

    folder = tmp_path / "targets"
    folder.mkdir()
    for i, color in enumerate([(200, 40, 40), (40, 40, 200)]):
        Image.new("RGB", (48, 40), color).save(folder / f"{i}.png")
    argv = ["sweep", "--source", "photo", "--target-images", str(folder), "--generator",
            "random-64", "--steps", "1,2", "--server", server]  # fmt: skip
    assert _exit(argv) == 0, capsys.readouterr().err
    sweep_id = capsys.readouterr().out.split()[1].rstrip(":")
    sweep = httpx.get(f"{server}/api/v1/sweeps/{sweep_id}").json()
    assert sweep["count"] == 2
    [names] = {tuple(j["params"]["target_images"]) for j in sweep["jobs"]}
    assert len(names) == 2 and all(j["params"]["target_text"] == "" for j in sweep["jobs"])
    for job in sweep["jobs"]:
        for name in names:
            own = settings.data_dir / "jobs" / job["id"] / "domain_images" / f"{name}.png"
            assert own.is_file()
            assert hashlib.sha256(own.read_bytes()).hexdigest() == name

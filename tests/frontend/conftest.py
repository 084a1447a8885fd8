"""Fixtures for the page's browser tests: the real service, started as a user starts it,
and Debian's Chromium driven by Playwright (no downloaded browser builds).

Needs: `pip install playwright` and `apt-get install chromium` (or NADA_CHROMIUM=/path).
Without them the browser tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # stub_api, under --import-mode=importlib
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICE_START_TIMEOUT = 90  # seconds until /api/v1/healthz answers


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


def chromium_path() -> str:
    found = os.environ.get("NADA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        _missing(f"no Chromium at {found}: apt-get install chromium (or set NADA_CHROMIUM)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install playwright")
    executable = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class PageErrors:
    """Uncaught exceptions and console errors of one page, checked after each test."""

    uncaught: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


def new_page(browser, errors: PageErrors, **context_args):
    context_args.setdefault("viewport", {"width": 1366, "height": 900})
    context = browser.new_context(accept_downloads=True, **context_args)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.uncaught.append(str(exc)))
    page.on("console", lambda msg: errors.console.append(msg.text) if msg.type == "error" else None)
    return page


@pytest.fixture
def make_page(browser, page_errors: PageErrors):
    """new_page() for tests that need their own context options (a phone, a second tab)."""
    pages = []

    def make(**context_args):
        pages.append(new_page(browser, page_errors, **context_args))
        return pages[-1]

    yield make
    for p in pages:
        p.context.close()


@pytest.fixture
def page(browser, page_errors: PageErrors):
    page = new_page(browser, page_errors)
    yield page
    page.context.close()
    assert not page_errors.uncaught, f"uncaught errors in the page: {page_errors.uncaught}"


# ---- the real service ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str  # ends with '/'
    data_dir: Path
    log: Path
    pid: int = 0  # `nada serve`: the leader of its process group (its worker is in it)

    def api(self, path: str) -> str:
        return f"{self.url}api/v1/{path.lstrip('/')}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _nada_command() -> list[str]:
    """`nada` next to this Python (the venv's console script), else `python -m cli`."""
    script = Path(sys.executable).parent / "nada"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]


@contextlib.contextmanager
def running_service(
    data_dir: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[Service]:
    """`nada serve` on a free port with `data_dir`, until the block ends."""
    if not (REPO / "backend" / "main.py").is_file():
        pytest.fail("backend/main.py is missing: the page's browser tests need the real service")
    log = data_dir / "serve.log"
    port = free_port()
    # Only our settings: the embedded SQLite queue and database in a fresh directory, even
    # where the environment points other tests at a shared Redis or PostgreSQL.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("NADA_")}
    child_env.update(NADA_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **(env or {}))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_nada_command(), "serve", "--port", str(port), *args],
            cwd=REPO,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    svc = Service(url=f"http://127.0.0.1:{port}/", data_dir=data_dir, log=log, pid=proc.pid)
    try:
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`nada serve` exited with {proc.returncode}:\n{svc.log_tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(svc.api("healthz"), timeout=2) as res,
            ):
                if res.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`nada serve` did not answer in {SERVICE_START_TIMEOUT} s:\n{svc.log_tail()}"
                )
            time.sleep(0.3)
        yield svc
    finally:
        # Like Ctrl-C in a terminal: SIGINT to the whole process group we started (the API
        # and its local worker), then SIGKILL for whatever has not exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Iterator[Service]:
    """`nada serve` on a free port with a fresh data dir: the API, the page and a local worker.
    One per session: the modules that use it share it (tests count jobs relative to before)."""
    with running_service(tmp_path_factory.mktemp("nada-data")) as svc:
        yield svc


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True

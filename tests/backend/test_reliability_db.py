"""PostgreSQL unreachable: the API answers 503 + Retry-After, and recovers by itself.

The outage is a TCP proxy in front of the shared PostgreSQL that the test cuts (closes its
listener and every proxied connection) and restores, so the shared server keeps running
for the other test processes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from jobs.settings import Settings
from tests.conftest import RecordingQueue

pytestmark = pytest.mark.services  # the local PostgreSQL (untouched: the proxy is cut)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; cut() drops every connection and refuses new
    ones until restore() (same port)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def _call(self, coro) -> object:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # an RST, as from a server that went away
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._stop())

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._server is not None:
            self.cut()
        self._call(self._cancel_tasks())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def test_api_answers_503_while_postgres_is_unreachable_and_recovers(
    proxied_pg: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from backend.api.db_errors import UNAVAILABLE_DETAIL, install_db_error_handlers
    from backend.main import create_app

    url, proxy = proxied_pg
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        lease_seconds=600,  # no reaper pass during the test
        migrate_on_start=False,
        frontend_dir=None,
    )
    app = create_app(settings, queue=RecordingQueue(settings))
    if not any(h.__module__ == "backend.api.db_errors" for h in app.exception_handlers.values()):
        install_db_error_handlers(app)  # until backend/main.py wires it in
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/jobs").status_code == 200  # a pooled connection exists
        proxy.cut()
        for _ in range(2):  # a dead pooled connection, then a refused new one
            r = client.get("/api/v1/jobs")
            assert r.status_code == 503, r.text
            assert r.json() == {"detail": UNAVAILABLE_DETAIL}
            assert int(r.headers["Retry-After"]) > 0
        proxy.restore()
        r = client.get("/api/v1/jobs")  # no restart: pre-ping replaces the dead connections
        assert r.status_code == 200, r.text

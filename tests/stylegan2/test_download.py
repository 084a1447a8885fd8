"""The downloader against a real HTTP server on 127.0.0.1 (no outside network)."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stylegan2.download import ChecksumError, DownloadError, download, sha256_file

PAYLOAD = bytes(range(256)) * 1000  # 256 000 bytes, not all alike
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Server:
    """What a test serves and what the server saw."""

    url: str
    data: bytes = PAYLOAD
    ranges: bool = True  # honour Range requests (False: always answer 200 with everything)
    drop_after: int | None = None  # close the first response after this many body bytes
    delay: float = 0.0  # seconds to wait before answering
    status: int = 200  # answer every request with this error status when not 200
    served: int = 0  # body bytes sent
    requests: list[str | None] = field(default_factory=list)  # each request's Range header


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            header = self.headers.get("Range")
            server.requests.append(header)
            time.sleep(server.delay)
            if server.status != 200:
                self.send_error(server.status)
                return
            data, start = server.data, 0
            match = _RANGE.match(header or "")
            if server.ranges and match:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.drop_after is not None:
                body, server.drop_after = body[: server.drop_after], None
                self.close_connection = True
            self.wfile.write(body)
            server.served += len(body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/weights.pt"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_downloads_verifies_and_renames(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "weights.pt"
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("weights.pt.part").exists()
    assert server.requests == [None]
    assert sha256_file(dest) == PAYLOAD_SHA


def test_resumes_a_partial_download_with_a_range_request(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "weights.pt"
    dest.with_name("weights.pt.part").write_bytes(PAYLOAD[:100_000])
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert server.requests == ["bytes=100000-"]
    assert server.served == len(PAYLOAD) - 100_000  # only the rest was fetched
    assert dest.read_bytes() == PAYLOAD


def test_restarts_when_the_server_ignores_range(server: Server, tmp_path: Path) -> None:
    server.ranges = False
    dest = tmp_path / "weights.pt"
    dest.with_name("weights.pt.part").write_bytes(PAYLOAD[:100_000])
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert server.served == len(PAYLOAD)  # answered 200: everything, written from zero
    assert dest.read_bytes() == PAYLOAD


def test_a_dropped_connection_is_resumed_by_the_retry(server: Server, tmp_path: Path) -> None:
    server.drop_after = 50_000
    dest = tmp_path / "weights.pt"
    assert download(server.url, dest, sha256=PAYLOAD_SHA, backoff=0) == PAYLOAD_SHA
    assert server.requests == [None, "bytes=50000-"]
    assert server.served == len(PAYLOAD)
    assert dest.read_bytes() == PAYLOAD


def test_a_complete_part_file_is_finished_without_refetching(
    server: Server, tmp_path: Path
) -> None:
    dest = tmp_path / "weights.pt"
    dest.with_name("weights.pt.part").write_bytes(PAYLOAD)  # killed before the rename
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert server.served == 0  # the server answered 416 with the full length
    assert dest.read_bytes() == PAYLOAD


def test_bad_checksum_is_rejected_and_the_download_removed(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "weights.pt"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        download(server.url, dest, sha256=wrong, name="ffhq-test")
    message = str(info.value)
    assert wrong in message and PAYLOAD_SHA in message and server.url in message
    assert "ffhq-test" in message
    assert (info.value.expected, info.value.got) == (wrong, PAYLOAD_SHA)
    assert not dest.exists()
    assert not dest.with_name("weights.pt.part").exists()


def test_a_corrupt_part_file_fails_the_checksum_then_a_retry_succeeds(
    server: Server, tmp_path: Path
) -> None:
    dest = tmp_path / "weights.pt"
    part = dest.with_name("weights.pt.part")
    part.write_bytes(b"\xff" * 1000)  # not the file's first bytes
    with pytest.raises(ChecksumError):
        download(server.url, dest, sha256=PAYLOAD_SHA)
    assert not part.exists() and not dest.exists()
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA


def test_an_existing_file_is_verified_not_downloaded(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "weights.pt"
    dest.write_bytes(PAYLOAD)
    assert download(server.url, dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert server.requests == []
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(ChecksumError, match="delete it"):
        download(server.url, dest, sha256=PAYLOAD_SHA)


def test_offline_error_says_how_to_place_the_file(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/stylegan2-ffhq-config-f.pt"
    dest = tmp_path / "stylegan2-ffhq-config-f.pt"
    with pytest.raises(DownloadError) as info:
        download(url, dest, name="ffhq-1024", retries=1, backoff=0)
    message = str(info.value)
    assert f"could not download ffhq-1024 from {url} (" in message
    assert f"place the file by hand at {dest}" in message
    assert "--generator PATH" in message
    assert not isinstance(info.value, ChecksumError)


def test_http_errors_are_not_retried(server: Server, tmp_path: Path) -> None:
    server.status = 404
    with pytest.raises(DownloadError, match=r"HTTP 404"):
        download(server.url, tmp_path / "weights.pt", backoff=0)
    assert len(server.requests) == 1


def test_two_downloads_of_one_file_fetch_it_once(server: Server, tmp_path: Path) -> None:
    server.delay = 0.3  # the second caller arrives while the first is still downloading
    dest = tmp_path / "weights.pt"
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(download(server.url, dest)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [PAYLOAD_SHA, PAYLOAD_SHA]
    assert len(server.requests) == 1


def test_no_progress_bar_when_stderr_is_not_a_tty(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    download(server.url, tmp_path / "weights.pt")
    assert capsys.readouterr().err == ""
    download(server.url, tmp_path / "again.pt", progress=True)
    assert "again.pt" in capsys.readouterr().err

"""POST /api/v1/generators: how the multipart form is received (backend.uploads.receive_upload).

Pass criteria: a request that is not multipart is 415; a broken body (garbage, or no closing
boundary) is 400 "malformed multipart body"; a missing or unusable field and a second file
are 422 naming the field; the file is written under <data_dir>/uploads-incoming while it
streams, reading stops as soon as the file or the body passes the cap (and a too-large
Content-Length is refused before reading); a full disk is 507, not a client error; no file
is left behind on any path. None of these reach the validator (no torch import)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from backend import uploads
from jobs.settings import Settings

API = "/api/v1"
BOUNDARY = "XyZ"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _text(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    )


def _file_head(name: str = "file") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="g.pt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _file(name: str = "file", data: bytes = b"weights") -> bytes:
    return _file_head(name) + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def _post(client, body: bytes | Iterator[bytes], ctype: str = CTYPE):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/generators", content=body, headers={"content-type": ctype})


def _invalid(response, field: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", field] and detail["type"] == "invalid_param"
    return str(detail["msg"])


def test_not_multipart_is_415(client, settings: Settings, leftovers) -> None:  # type: ignore[no-untyped-def]
    assert client.post(f"{API}/generators", json={"name": "x"}).status_code == 415
    r = _post(client, _text("name", "x") + END, ctype="multipart/form-data")  # no boundary
    assert r.status_code == 415 and "multipart/form-data" in r.text
    assert leftovers() == []


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"",
        _text("name", "gen") + _file(),  # no closing boundary
        _text("name", "gen") + _file_head() + b"half a file",  # cut off inside the file
        _text("name", "gen")
        + f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n".encode()
        + END,
    ],
    ids=["garbage", "empty", "no-closing-boundary", "cut-in-file", "part-without-name"],
)
def test_broken_body_is_400(client, settings: Settings, leftovers, body: bytes) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, body)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("malformed multipart body: ")
    assert leftovers() == []


@pytest.mark.parametrize(
    "body, field, says",
    [
        (_file() + END, "name", "is required"),
        (_text("name", "gen") + END, "file", "is required"),
        (_text("name", "gen") + _text("file", "not a file part") + END, "file", "filename"),
        (_text("name", "gen") + _file() + _file() + END, "file", "exactly one file"),
        (_text("name", "gen") + _file("other") + _file() + END, "file", "exactly one file"),
        (_file("name") + END, "name", "text field"),  # the name sent as a file
        (_text("name", "a") + _text("name", "b") + _file() + END, "name", "once"),
        (_text("name", "a" * 2000) + _file() + END, "name", "longer than 1024 bytes"),
        (  # a file sent without a filename is a text part: say so, not just "longer than"
            _text("name", "gen") + _text("file", "x" * 2000) + END,
            "file",
            "is a form field (a part without a filename) longer than 1024 bytes; a file part "
            "needs a filename",
        ),
        (_text("name", "Upper") + _file() + END, "name", "must match"),
    ],
)
def test_missing_or_unusable_field_is_422(
    client, settings: Settings, leftovers, body, field, says
) -> None:  # type: ignore[no-untyped-def]
    msg = _invalid(_post(client, body), field)
    assert says in msg
    assert leftovers() == [] and not (settings.data_dir / "generators").exists()


def test_too_many_fields_is_400(client, settings: Settings, leftovers) -> None:  # type: ignore[no-untyped-def]
    body = b"".join(_text(f"f{i}", "v") for i in range(10)) + _text("name", "g") + _file() + END
    r = _post(client, body)
    assert r.status_code == 400 and "Too many fields" in r.text
    assert leftovers() == []


def test_disk_full_while_receiving_is_507(
    client, settings: Settings, leftovers, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    def full(self, data: bytes) -> int:  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads._IncomingFile, "write", full)
    r = _post(client, _text("name", "gen") + _file() + END)
    assert r.status_code == 507, r.text
    assert "disk is full" in r.json()["detail"]
    assert leftovers() == []


def test_disk_full_while_storing_is_507(client, settings: Settings, leftovers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.api.routes import generators

    seen: list[Path] = []

    def full(src: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(src)
        assert src.parent == settings.data_dir / "uploads-incoming"
        assert src.read_bytes() == b"weights"  # flushed before the validator would read it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(generators, "store_generator", full)
    r = _post(client, _text("name", "gen") + _file() + END)
    assert r.status_code == 507 and "disk is full" in r.text
    assert len(seen) == 1 and not seen[0].exists()
    assert leftovers() == []


def test_other_disk_errors_are_not_507(client, settings: Settings, leftovers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(self, data: bytes) -> int:  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(uploads._IncomingFile, "write", broken)
    from fastapi.testclient import TestClient

    with TestClient(client.app, raise_server_exceptions=False) as c:
        assert _post(c, _text("name", "gen") + _file() + END).status_code == 500
    assert leftovers() == []


# --- receive_upload directly: what it reads, and where the bytes go ----------------------


async def _receive(headers: dict[str, str], stream: AsyncIterator[bytes], folder: Path, cap: int):  # type: ignore[no-untyped-def]
    async with uploads.receive_upload(Headers(headers), stream, folder, max_bytes=cap) as got:
        return got.name, got.path.read_bytes(), got.path


def test_a_good_form_streams_into_the_incoming_folder(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    during: list[list[Path]] = []

    async def body() -> AsyncIterator[bytes]:
        yield _text("name", "gen") + _file_head()
        for _ in range(8):
            yield b"\1" * 1000
            during.append(list(folder.iterdir()))
        yield b"\r\n" + END

    name, data, path = asyncio.run(_receive({"content-type": CTYPE}, body(), folder, 10_000))
    assert name == "gen" and data == b"\1" * 8000
    assert path.parent == folder and not path.exists()  # removed when the block exited
    assert all(seen == [path] for seen in during[1:])  # on disk while it streamed
    assert list(folder.iterdir()) == []


def test_reading_stops_once_the_file_passes_the_cap(tmp_path: Path) -> None:
    read = 0

    async def endless_file() -> AsyncIterator[bytes]:
        nonlocal read
        yield _text("name", "gen") + _file_head()
        while True:
            read += 1
            yield b"\0" * 1024

    with pytest.raises(uploads.UploadTooLarge):
        asyncio.run(_receive({"content-type": CTYPE}, endless_file(), tmp_path, 4096))
    assert read <= 6
    assert list(tmp_path.iterdir()) == []


def test_reading_stops_once_the_body_passes_the_cap(tmp_path: Path) -> None:
    """Bytes outside the file (here after the closing boundary) count too."""
    read = 0

    async def endless_epilogue() -> AsyncIterator[bytes]:
        nonlocal read
        yield _text("name", "gen") + _file() + END
        while True:
            read += 1
            yield b"x" * (16 << 10)

    with pytest.raises(uploads.UploadTooLarge):
        asyncio.run(_receive({"content-type": CTYPE}, endless_epilogue(), tmp_path, 4096))
    assert read <= (uploads._FORM_SLACK + 4096) // (16 << 10) + 1
    assert list(tmp_path.iterdir()) == []


def test_a_too_large_content_length_is_refused_before_reading(tmp_path: Path) -> None:
    async def unread() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""  # pragma: no cover

    headers = {"content-type": CTYPE, "content-length": str(1 << 40)}
    with pytest.raises(uploads.UploadTooLarge):
        asyncio.run(_receive(headers, unread(), tmp_path / "incoming", 1 << 20))

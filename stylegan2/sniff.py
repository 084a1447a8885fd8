"""What a file claims to be, from its first bytes, without torch.

`torch.save` writes a zip archive (since PyTorch 1.6) or, in older files, a pickle; anything
else cannot be a checkpoint, and saying what it looks like instead (empty, an HTML page saved
in place of a download) is the useful error. The checkpoint loader and the upload route share
this check; the route runs it in the API process, which must not import torch, so that a file
that is plainly not a checkpoint is refused without starting a validator child.
"""

from __future__ import annotations

from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
PICKLE_PROTO = b"\x80"  # legacy torch.save files and plain pickles start with PROTO
HEAD_BYTES = 64


def not_torch_reason(head: bytes) -> str | None:
    """Why a file starting with `head` is not a PyTorch checkpoint; None if it may be one."""
    if head.startswith((ZIP_MAGIC, PICKLE_PROTO)):
        return None
    if not head:
        return "the file is empty"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return (
            "it is an HTML page, e.g. a download site's error or confirmation page saved "
            "instead of the file"
        )
    return f"neither a zip archive nor a pickle; it starts with {head[:16]!r}"


def read_head(path: str | Path) -> bytes:
    """The first HEAD_BYTES bytes of `path` (OSError as open/read raise it)."""
    with Path(path).open("rb") as f:
        return f.read(HEAD_BYTES)

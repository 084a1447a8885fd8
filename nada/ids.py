"""The identifiers the service hands out: one pattern for jobs, sweeps and photos' codes.

Every id is `uuid.uuid4().hex` (32 lowercase hex digits). Routes check a path's id against
this before it reaches the database or a file path, so no other spelling of it is needed.
"""

from __future__ import annotations

import re
import uuid

ID_PATTERN = r"[0-9a-f]{32}"  # uuid4().hex
_ID = re.compile(ID_PATTERN)


def new_id() -> str:
    """A fresh id (uuid4 hex)."""
    return uuid.uuid4().hex


def is_id(text: object) -> bool:
    """Whether `text` is an id as the service writes them (a str of 32 lowercase hex digits)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None

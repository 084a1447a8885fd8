"""Queue priority (issue 24): its range, and the operator's cap per token.

A job's `priority` is an integer 0..9, 0 (normal) by default; a higher one is claimed
first, and jobs of one priority keep their submission order (jobs/leases.py claim_job,
jobs/store.py queue_position). A small unsigned range because it only orders a queue: ten
levels are more than operators tell apart, and 0 as the floor means nobody can push
everyone else's work back by asking for less than normal.

NADA_MAX_PRIORITY caps what every token may ask for; NADA_TOKEN_MAX_PRIORITY
('alice:9,bob:2', by the token's name as NADA_API_TOKENS gives it) overrides it per token.
Here, not in `backend/`, because the settings every process reads validate them.
"""

from __future__ import annotations

import re

MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 0


def parse_caps(spec: str) -> dict[str, int]:
    """NADA_TOKEN_MAX_PRIORITY ('alice:9,bob:2') as {owner: cap}. Raises ValueError naming
    the entry when malformed, out of range or given twice."""
    caps: dict[str, int] = {}
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, value = (part.strip() for part in entry.partition(":"))
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ValueError(
                f"NADA_TOKEN_MAX_PRIORITY: entry {entry!r} must be name:cap (a token's name)"
            )
        if not re.fullmatch(r"\d+", value) or not MIN_PRIORITY <= int(value) <= MAX_PRIORITY:
            raise ValueError(
                f"NADA_TOKEN_MAX_PRIORITY: the cap of {name!r} must be an integer "
                f"{MIN_PRIORITY}..{MAX_PRIORITY}"
            )
        if name in caps:
            raise ValueError(f"NADA_TOKEN_MAX_PRIORITY: {name!r} appears twice")
        caps[name] = int(value)
    return caps


def cap_of(owner: str | None, *, default_cap: int, caps: dict[str, int]) -> int:
    """The highest priority `owner` (a token's name; None or '' without tokens) may ask for."""
    return caps.get(owner or "", default_cap)

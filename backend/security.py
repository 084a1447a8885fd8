"""Two guards of the API that need no database: the per-token submission rate and binding.

`SubmissionLimiter` holds each token to NADA_SUBMISSIONS_PER_MINUTE in this process (and,
as a second instance, to NADA_UPLOADS_PER_MINUTE uploads: backend/api/upload_errors.py);
`is_loopback` tells `nada serve` whether its host is reachable only from this machine
(where it may run without tokens). The tokens themselves (parsing, hashing, constant-time
comparison) are `jobs.tokens`; CLIP's prompt bound is `backend/clip_tokens.py`'s.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SubmissionLimiter:
    """At most `per_minute` submissions (or uploads) per owner in any 60-second window (this
    process).

    In memory: behind several API processes each allows its own `per_minute`; the active
    job cap (counted in the database) is the one that holds across processes."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, owner: str) -> float:
        """Record a submission and return 0, or return seconds until one is allowed."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(owner, deque())
            while seen and seen[0] <= now - 60.0:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return max(seen[0] + 60.0 - now, 0.001)
            seen.append(now)
            return 0.0

"""Access control and input limits of the API: bearer tokens, CLIP's prompt bound, binding.

The tokens themselves (parsing, hashing, constant-time comparison) are `jobs.tokens`:
the settings that every process reads validate them.
"""

from __future__ import annotations

import html
import ipaddress
import re
import threading
import time
from collections import deque
from collections.abc import Callable

CLIP_CONTEXT_TOKENS = 77  # CLIP's context, start and end tokens included
CLIP_PROMPT_TOKENS = CLIP_CONTEXT_TOKENS - 2  # without the start and end tokens

# CLIP's pre-tokenizer (open_clip.tokenizer.SimpleTokenizer.pat) in stdlib `re`: letter runs,
# single digits, runs of other non-space characters. Every piece is at least one BPE token.
# Where stdlib classes differ from \p{L}/\p{N} (combining marks, '½') this finds fewer
# pieces, never more, so the count stays a lower bound.
_CLIP_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE)


def clip_token_lower_bound(text: str) -> int:
    """A lower bound of the BPE tokens CLIP makes of `text` (start/end tokens excluded).

    The API process cannot import open_clip (it imports torch), so it counts the
    pre-tokenizer's pieces: each becomes one BPE token or more. A prompt over this bound
    certainly does not fit; one under it may still not, and the engine's tokenizer check
    (the last word) fails such a job with `invalid_params`.
    """
    text = html.unescape(html.unescape(text))  # as open_clip's basic_clean
    return len(_CLIP_PIECES.findall(" ".join(text.lower().split())))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SubmissionLimiter:
    """At most `per_minute` submissions per owner in any 60-second window (this process).

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

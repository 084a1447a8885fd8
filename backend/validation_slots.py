"""How many expensive checks of uploads run at once in this API process.

A generator's validator child, a photo's or an example image's decoding all take a slot of
`VALIDATIONS` for as long as they run; beyond NADA_MAX_CONCURRENT_VALIDATIONS the route
answers 429 with Retry-After (`ValidatorsBusy`) rather than queue work it cannot bound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ValidatorsBusy(RuntimeError):
    """As many checks as allowed are running in this process; retry later."""

    retry_after_s = 10  # the Retry-After hint: a check takes seconds, up to its 180 s timeout

    def __init__(self, limit: int):
        super().__init__(
            f"{limit} uploaded generator(s) are being checked already; try again in "
            f"{self.retry_after_s} s (NADA_MAX_CONCURRENT_VALIDATIONS)"
        )
        self.limit = limit


class ValidationSlots:
    """How many checks run at once: a counter shared by this process's threads.

    Per process: each API process (uvicorn worker) counts its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    @contextmanager
    def take(self, limit: int | None) -> Iterator[None]:
        """Hold a slot for the block; ValidatorsBusy if `limit` are taken (None: no limit)."""
        with self._lock:
            if limit is not None and self.running >= limit:
                raise ValidatorsBusy(limit)
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1


VALIDATIONS = ValidationSlots()

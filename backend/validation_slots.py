"""How many expensive checks of uploads run at once in this API process, and for whom.

A generator's validator child, a photo's or an example image's decoding all take a slot of
`VALIDATIONS` for as long as they run. Two rules, both answered with 429 and Retry-After
(`ValidatorsBusy`) rather than queueing work that cannot be bounded:

- at most NADA_MAX_CONCURRENT_VALIDATIONS (`limit`) slots are held in the process;
- one token holds at most `token_share(limit)` = ceil(limit / 2) of them, so with a limit
  of 2 or more a token flooding the uploads leaves at least floor(limit / 2) slots to the
  others (`TokenValidationsBusy`). Without tokens (owner None) the share is the whole limit.

Decoding also reserves its image's pixel count from `DECODES`, a process-wide pixel budget
(NADA_DECODE_PIXEL_BUDGET): the pixels being decoded at once, all requests together, bound
the API process's memory (at most ~16 bytes a pixel while an image is decoded and
re-encoded). An image that would pass the budget waits, first come first served, until it
fits (an image alone always fits); after `PixelBudget.wait_s` it is refused with 429
(`DecodeBudgetBusy`). Since a token holds at most its share of the slots, it cannot hold
the budget either: another token's image is next in line.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def token_share(limit: int) -> int:
    """The most slots one token may hold at once: ceil(limit / 2), at least 1."""
    return max(1, (limit + 1) // 2)


class ValidatorsBusy(RuntimeError):
    """As many checks as allowed are running in this process; retry later."""

    retry_after_s = 10  # the Retry-After hint: a check takes seconds, up to its 180 s timeout
    own_message = False  # the routes word the process-wide case for what they check

    def __init__(self, limit: int, message: str | None = None):
        super().__init__(
            message
            or f"{limit} uploaded generator(s) are being checked already; try again in "
            f"{self.retry_after_s} s (NADA_MAX_CONCURRENT_VALIDATIONS)"
        )
        self.limit = limit


class TokenValidationsBusy(ValidatorsBusy):
    """This token holds its share of the slots already; other tokens may still get one."""

    own_message = True

    def __init__(self, limit: int):
        share = token_share(limit)
        super().__init__(
            limit,
            f"this token has {share} upload(s) being checked already, the most one token "
            f"may have of the {limit} checked at once (NADA_MAX_CONCURRENT_VALIDATIONS); "
            f"try again in {self.retry_after_s} s",
        )
        self.share = share


class DecodeBudgetBusy(ValidatorsBusy):
    """The image's pixels would pass the process's decoding budget; retry later."""

    retry_after_s = 5  # a decode takes a second or three
    own_message = True

    def __init__(self, budget: int, pixels: int, in_use: int):
        super().__init__(
            budget,
            f"images of {in_use} pixels are being decoded and this one, of {pixels}, waited "
            f"its turn too long; at most {budget} pixels are decoded at once "
            f"(NADA_DECODE_PIXEL_BUDGET); try again in {self.retry_after_s} s",
        )
        self.budget = budget


class ValidationSlots:
    """How many checks run at once, in all and per token: counters shared by this process's
    threads.

    Per process: each API process (uvicorn worker) counts its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self._held: dict[str, int] = {}  # owner -> slots held

    def held(self, owner: str) -> int:
        with self._lock:
            return self._held.get(owner, 0)

    @contextmanager
    def take(self, limit: int | None, owner: str | None = None) -> Iterator[None]:
        """Hold a slot for the block. `limit`: the process's cap (None: no limit); `owner`:
        the token's name (None: no tokens, no share). Raises TokenValidationsBusy when the
        owner holds its share, ValidatorsBusy when `limit` slots are taken."""
        with self._lock:
            if limit is not None:
                if owner is not None and self._held.get(owner, 0) >= token_share(limit):
                    raise TokenValidationsBusy(limit)
                if self.running >= limit:
                    raise ValidatorsBusy(limit)
            self.running += 1
            if owner is not None:
                self._held[owner] = self._held.get(owner, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
                if owner is not None:
                    left = self._held[owner] - 1
                    if left:
                        self._held[owner] = left
                    else:
                        del self._held[owner]


class PixelBudget:
    """The pixels being decoded at once in this process, all requests together; images
    that do not fit wait their turn, first come first served."""

    wait_s = 30.0  # the longest an image waits for its turn; then DecodeBudgetBusy

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.in_use = 0
        self._queue: deque[object] = deque()  # one ticket per image waiting, in order

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    @contextmanager
    def hold(self, budget: int | None) -> Iterator[Callable[[int], None]]:
        """For one image: yields `admit(pixels)`, which the decoder calls once it knows the
        pixel count (before decoding any pixel); the pixels stay reserved until the block
        ends. `admit` waits until the image is the first in line and fits in `budget`
        (None: no budget) beside what is held already (an image alone always fits), at
        most `wait_s` seconds; then it raises DecodeBudgetBusy."""
        reserved = 0

        def admit(pixels: int) -> None:
            nonlocal reserved
            ticket = object()
            with self._cond:
                self._queue.append(ticket)
                try:
                    fits = self._cond.wait_for(
                        lambda: (
                            self._queue[0] is ticket
                            and (
                                budget is None or not self.in_use or self.in_use + pixels <= budget
                            )
                        ),
                        timeout=self.wait_s,
                    )
                    if not fits:
                        raise DecodeBudgetBusy(budget or 0, pixels, self.in_use)
                    self.in_use += pixels
                    reserved += pixels
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()  # the next in line may fit now

        try:
            yield admit
        finally:
            if reserved:
                with self._cond:
                    self.in_use -= reserved
                    self._cond.notify_all()


VALIDATIONS = ValidationSlots()
DECODES = PixelBudget()

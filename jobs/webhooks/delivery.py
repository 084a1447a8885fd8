"""One webhook delivery: a POST to an address `targets.resolve` checked, and the retry
schedule.

The connection goes to the checked address (never a second lookup of the name), with the
name in the Host header and as the TLS server name, so certificates are verified for the
name the client gave. Redirects are not followed (a 3xx is a failed attempt: a receiver
that moved must be re-registered, not followed into a private network). The answer's body
is read up to MAX_RESPONSE_BYTES and only an excerpt is kept.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import time
from dataclasses import dataclass

from jobs.webhooks.targets import Target

TIMEOUT_S = 10.0  # connect and each read
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 200
USER_AGENT = "stylegan-nada-webhooks/1"

# Seconds to wait before retry n (after attempt n failed): about an hour in all, then the
# delivery is given up and recorded as such.
RETRY_DELAYS_S: tuple[float, ...] = (5, 30, 120, 300, 600, 1200, 1800)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1


@dataclass(frozen=True)
class AttemptResult:
    """What one POST gave: the status (None when no answer came), how long it took, an
    error (None for a 2xx) and the start of the answer's body."""

    status: int | None
    latency_ms: float
    error: str | None
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_delays(text: str) -> tuple[float, ...]:
    """'5,30,120' -> (5.0, 30.0, 120.0): the waits before each retry (an empty text: none).

    Raises:
        ValueError: an entry that is not a positive number of seconds.
    """
    delays: list[float] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"not a number of seconds: {raw.strip()!r}") from None
        if not 0 < value <= 86400 or value != value:
            raise ValueError(f"a retry wait must be 0 < s <= 86400 (got {raw.strip()})")
        delays.append(value)
    return tuple(delays)


def retry_delay(
    attempt: int,
    *,
    delays: tuple[float, ...] = RETRY_DELAYS_S,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based), with +-`jitter`
    relative jitter so that many failed deliveries do not retry in lock step; None when
    no attempt is left."""
    if attempt < 1 or attempt > len(delays):
        return None
    spread = (rng or random).uniform(-jitter, jitter)
    return delays[attempt - 1] * (1 + spread)


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to one address, with the name for TLS (SNI and certificate check)."""

    def __init__(self, target: Target, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedPlain(http.client.HTTPConnection):
    """Plain http to one address (only where the operator allows http)."""

    def __init__(self, target: Target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float = TIMEOUT_S,
    context: ssl.SSLContext | None = None,
) -> AttemptResult:
    """POST `body` (JSON) to `target`'s first checked address; never raises for network
    faults (they are the result's `error`)."""
    if not target.addresses:
        raise ValueError("the target has no checked address: call targets.resolve first")
    address = target.addresses[0]
    started = time.monotonic()
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _Pinned(target, address, timeout_s, context or ssl.create_default_context())
    else:
        connection = _PinnedPlain(target, address, timeout_s)
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": str(len(body)),
        **headers,
    }
    try:
        connection.request("POST", target.path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return AttemptResult(None, _ms(started), _describe(exc))
    finally:
        connection.close()
    excerpt = data[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    if 200 <= status < 300:
        return AttemptResult(status, _ms(started), None, excerpt)
    if 300 <= status < 400:
        error = f"answered {status} (redirects are not followed)"
    else:
        error = f"answered {status}"
    return AttemptResult(status, _ms(started), error, excerpt)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not valid: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]

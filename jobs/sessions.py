"""Sign-in sessions of the page (docs/security.md): what its cookie stands for.

POST /session checks a token once and makes a session: a random 32-byte id goes to the
browser as the cookie, and only the id's SHA-256 is stored, with the owner, the SHA-256 of
the token it was made with and an expiry. A request's cookie is looked up by its hash (an
indexed equality: nothing about the stored ids leaks through timing), and it counts only
while it has not expired and its token is still one of NADA_API_TOKENS. Signing out
deletes the row, so a replayed cookie is refused; removing a token from the settings
refuses its sessions at once, and housekeeping deletes them (and expired ones).
Torch-free and HTTP-free: the API calls it, the reaper prunes with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobs.db.models import SignInSession
from jobs.tokens import ApiToken

SESSION_DAYS = 7  # a session's (and its cookie's) lifetime; signing out ends it sooner
ID_BYTES = 32  # random bytes of a session id (43 URL-safe characters in the cookie)
_MAX_ID_CHARS = 64  # a longer cookie is not one of ours: no hashing of arbitrary input


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # the cookie's value: shown once, never stored
    owner: str
    expires_at: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create(
    session: Session, *, token: ApiToken, now: datetime | None = None, days: float = SESSION_DAYS
) -> SignedIn:
    """A new session for `token` (already authenticated); the caller commits."""
    now = now or datetime.now(UTC)
    session_id = secrets.token_urlsafe(ID_BYTES)
    expires_at = now + timedelta(days=days)
    session.add(
        SignInSession(
            id_sha256=_digest(session_id),
            owner=token.owner,
            token_sha256=token.sha256,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return SignedIn(session_id=session_id, owner=token.owner, expires_at=expires_at)


def look_up(
    session: Session,
    session_id: str,
    *,
    tokens: tuple[ApiToken, ...],
    now: datetime | None = None,
) -> ApiToken | None:
    """The configured token a live session id stands for; None when the id is unknown,
    signed out, expired, or its token is no longer configured (the owner is the token's
    name now: a renamed token's sessions follow it)."""
    if not session_id or len(session_id) > _MAX_ID_CHARS or not session_id.isascii():
        return None
    row = session.get(SignInSession, _digest(session_id))
    if row is None or row.expires_at <= (now or datetime.now(UTC)):
        return None
    match = None
    for token in tokens:  # every entry, in constant time, as jobs/tokens.authenticate
        if hmac.compare_digest(token.sha256, row.token_sha256):
            match = token
    return match


def revoke(session: Session, session_id: str) -> bool:
    """Sign out: delete the session (True if there was one); the caller commits."""
    if not session_id or len(session_id) > _MAX_ID_CHARS or not session_id.isascii():
        return False
    result = session.execute(
        delete(SignInSession).where(SignInSession.id_sha256 == _digest(session_id))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_token(session: Session, token_sha256: str) -> int:
    """Delete every session made with the token of this hash; how many."""
    result = session.execute(
        delete(SignInSession).where(SignInSession.token_sha256 == token_sha256)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def prune(
    session: Session, *, live_token_hashes: Iterable[str], now: datetime | None = None
) -> int:
    """Housekeeping: delete expired sessions and those whose token is no longer configured
    (so that putting a removed token back does not revive them); how many."""
    now = now or datetime.now(UTC)
    live = set(live_token_hashes)
    removed = int(
        session.execute(  # type: ignore[attr-defined]
            delete(SignInSession).where(SignInSession.expires_at <= now)
        ).rowcount
    )
    stale = [
        digest
        for digest in session.scalars(select(SignInSession.token_sha256).distinct())
        if digest not in live
    ]
    for digest in stale:
        removed += revoke_token(session, digest)
    return removed

"""API tokens: who may submit jobs and whose jobs they are (docs/security.md).

Tokens come from NADA_API_TOKENS: comma-separated `token` or `name:token` entries. Only
their SHA-256 hashes are kept in memory and compared (hmac.compare_digest); a token is
never logged. A request's *owner* is the token's name (or `token-<hash prefix>` for an
unnamed token) and is stored with each job it submits: a token sees only its own jobs.
Here, not in `backend/`, because the settings every process reads validate them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiToken:
    owner: str  # the token's name, or 'token-<first 12 hex of its hash>'
    sha256: str  # hex digest; the token itself is never kept


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(spec: str | None) -> tuple[ApiToken, ...]:
    """NADA_API_TOKENS ('tok1,alice:tok2') as hashed tokens; None means no tokens. Raises
    ValueError if malformed, if a name or a token appears twice, or if a set value names
    no token at all."""
    found: list[ApiToken] = []
    owners: set[str] = set()
    for entry in (spec or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, token = entry.partition(":")
        if not sep:
            name, token = "", entry
        name, token = name.strip(), token.strip()
        if sep and not name:  # ':token' reads as a name someone forgot to write
            raise ValueError(
                f"NADA_API_TOKENS: entry number {len(found) + 1} has an empty name before ':' "
                "(write name:token, or the token alone)"
            )
        if len(token) < 16:
            # Do not echo the token; say which entry (by name or position).
            which = f"of {name!r}" if name else f"number {len(found) + 1}"
            raise ValueError(f"NADA_API_TOKENS: token {which} is shorter than 16 characters")
        if name and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ValueError(
                f"NADA_API_TOKENS: token name {name!r} must match [A-Za-z0-9_.-]{{1,64}}"
            )
        digest = hash_token(token)
        owner = name or f"token-{digest[:12]}"
        if owner in owners:
            raise ValueError(f"NADA_API_TOKENS: token name {owner!r} appears twice")
        twin = next((t.owner for t in found if t.sha256 == digest), None)
        if twin is not None:  # two names for one secret: which owner would it be?
            raise ValueError(f"NADA_API_TOKENS: {owner!r} has the same token as {twin!r}")
        owners.add(owner)
        found.append(ApiToken(owner=owner, sha256=digest))
    if spec is not None and not found:
        # A value like ',' or ' ' would otherwise mean "no authentication" without a word.
        raise ValueError(
            "NADA_API_TOKENS is set but names no token; give tokens, or unset it to serve "
            "without authentication (loopback only)"
        )
    return tuple(found)


def authenticate(tokens: tuple[ApiToken, ...], presented: str) -> ApiToken | None:
    """The configured token whose hash equals the presented token's, compared in constant
    time against every entry (no early exit that would time which one matched)."""
    digest = hash_token(presented)
    match = None
    for token in tokens:
        if hmac.compare_digest(token.sha256, digest):
            match = token
    return match

"""Cross-origin calls: off unless LOCKBOX_CORS_ORIGINS lists origins.

Off, a browser page on another origin gets no CORS header from Lockbox, so
it can neither read an answer nor send the `Authorization` header (its
preflight is refused). Listed origins may call `/graphql` with a bearer
token and read the answers: Starlette's CORSMiddleware answers their
preflights, and refuses (400) a preflight from any other origin. Nothing
relies on cookies, so credentials are never allowed; the same list lets
those origins open WebSockets (api.view).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from strawberry.http.websocket_origin import normalize_allowed_origins

# What a GraphQL client sends across origins: the token, JSON, and the
# headers Apollo Client adds (its CSRF-prevention header, the operation's
# name and the client's name and version).
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Apollo-Require-Preflight",
    "X-Apollo-Operation-Name",
    "Apollo-Client-Name",
    "Apollo-Client-Version",
)

# How long a browser may keep a preflight's answer.
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_origins(configured: Sequence[str]) -> tuple[str, ...]:
    """The origins as browsers send them (`https://app.example.com`); a value
    that is not an origin (a path, `*`) fails at start, naming it."""
    if "*" in configured:
        raise ValueError(
            "LOCKBOX_CORS_ORIGINS lists origins (https://app.example.com), not '*': "
            "any page could then use a token its user pasted into it"
        )
    try:
        return tuple(sorted(normalize_allowed_origins(configured)))
    except ValueError as exc:
        raise ValueError(f"LOCKBOX_CORS_ORIGINS: {exc}") from None


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """The middleware for `origins` (already normalised); none when empty."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            allow_credentials=False,
            # A refused call's hint (RATE_LIMITED) is readable across origins too,
            # and so is the request id a user quotes (lockbox.observability.logs).
            expose_headers=["Retry-After", "X-Request-Id"],
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
    ]

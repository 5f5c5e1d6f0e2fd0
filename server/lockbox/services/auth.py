"""API tokens: issuing, hashing and authenticating."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockbox.domain.errors import Unauthenticated
from lockbox.domain.policy import Actor, Role
from lockbox.store import queries as store
from lockbox.store.models import Principal

if TYPE_CHECKING:
    from lockbox.services.deps import Deps

TOKEN_PREFIX = "lbx_"  # noqa: S105 - a public prefix, not a secret


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough: there is
    # nothing to brute-force, and lookups stay one indexed equality.
    return hashlib.sha256(secret.encode()).hexdigest()


def actor_of(principal: Principal) -> Actor:
    return Actor(
        id=str(principal.id),
        name=principal.name,
        role=Role(principal.role),
        tenant_id=None if principal.tenant_id is None else str(principal.tenant_id),
        scopes=tuple(principal.scopes or ()),
    )


@dataclass(frozen=True, slots=True)
class Session:
    actor: Actor
    token_id: uuid.UUID


def parse_authorization(header: str | None) -> str:
    """The secret in an `Authorization: Bearer …` value."""
    if not header:
        raise Unauthenticated("missing token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthenticated("malformed token: expected 'Bearer lbx_…'")
    return secret


async def authenticate(deps: Deps, header: str | None) -> Session:
    """The session of the token in `header`. Called outside any transaction:
    the shared lookup runs on the connection of whichever check started it."""
    secret = parse_authorization(header)
    found = await deps.group_commit(_look_up).submit(hash_secret(secret))
    if found is None:
        raise Unauthenticated("unknown or revoked token")
    token_id, principal = found
    return Session(actor=actor_of(principal), token_id=token_id)


async def _look_up(token_hashes: list[str]) -> list[tuple[uuid.UUID, Principal] | None]:
    """Concurrent authentications share one query, as concurrent gate calls
    share one commit (services.group_commit): a check that arrives while a
    query is under way waits for the next one, so it still sees every
    revocation committed before it arrived."""
    found = await store.principals_for_tokens(sorted(set(token_hashes)))
    return [found.get(token_hash) for token_hash in token_hashes]

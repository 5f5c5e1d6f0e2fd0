"""Per-request (HTTP) or per-connection (WebSocket) context."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket

from lockbox.api.loaders import Loaders
from lockbox.domain.errors import RateLimited, Unauthenticated
from lockbox.domain.policy import Actor
from lockbox.services import auth
from lockbox.services.deps import Deps

log = logging.getLogger(__name__)


def authorization_from_params(params: Any) -> str | None:
    """The token in a `connection_init` payload; the key is matched case-insensitively."""
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            return value
    return None


class OperationAuth:
    """One WebSocket operation's authentication, shared by its root fields
    as an HTTP request's is: an operation counts once against the rate limit,
    however many root fields it has."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: asyncio.Future[auth.Session] | None = None


# The operation running in this task (its root fields' tasks inherit it);
# set by the sockets' protocol handlers (api.operations) as each one starts.
OPERATION_AUTH: ContextVar[OperationAuth | None] = ContextVar(
    "lockbox_operation_auth", default=None
)


def begin_operation() -> None:
    OPERATION_AUTH.set(OperationAuth())


@dataclass
class Context:
    deps: Deps
    request: Request | WebSocket
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(default_factory=Loaders)
    # The client's address (api.client_address); the socket's peer if not given.
    client_address: str | None = None
    # The principal whose open-socket slot this WebSocket holds (api.sockets).
    socket_principal: str | None = None
    _session: auth.Session | None = None
    _authenticating: asyncio.Future[auth.Session] | None = None

    @property
    def is_websocket(self) -> bool:
        return isinstance(self.request, WebSocket)

    def authorization(self) -> str | None:
        if self.is_websocket:
            return authorization_from_params(self.connection_params)
        return self.request.headers.get("authorization")

    @property
    def address(self) -> str:
        if self.client_address is not None:
            return self.client_address
        client = self.request.client
        return "unknown" if client is None else client.host

    async def actor(self) -> Actor:
        """The caller. A WebSocket re-checks its token for every operation, so a
        revoked token or disabled principal cannot start anything new. Each
        HTTP request and each new WebSocket operation counts against the
        caller's rate limit; each failure to authenticate, against the client
        address's (past it, UNAUTHENTICATED becomes RATE_LIMITED). An HTTP
        request is refused once: its other root fields get the same answer."""
        if self.is_websocket:
            operation = OPERATION_AUTH.get()
            if operation is None:  # connection_init
                self._session = await self._authenticate()
                return self._session.actor
            if operation.pending is None:
                operation.pending = asyncio.ensure_future(self._authenticate())
            self._session = await operation.pending
            return self._session.actor
        if self._session is None:
            # Root fields resolve concurrently: they share one check.
            if self._authenticating is None:
                self._authenticating = asyncio.ensure_future(self._authenticate())
            self._session = await self._authenticating
        return self._session.actor

    async def _authenticate(self) -> auth.Session:
        try:
            session = await auth.authenticate(self.deps, self.authorization())
        except Unauthenticated:
            try:
                await self.deps.auth_failures.check(f"authfail:{self.address}")
            except RateLimited:
                log.warning("too many failed authentications from %s", self.address)
                raise
            raise
        try:
            await self.deps.limiter.check(session.actor.id)
        except RateLimited:
            log.warning("rate limited %s (from %s)", session.actor.name, self.address)
            raise
        return session

    def known_viewer(self) -> Actor | None:
        """The caller if the operation has authenticated it already (every
        root field does); None otherwise. For fields that cannot await
        (a subscription's events are also rendered synchronously)."""
        return None if self._session is None else self._session.actor

    async def viewer(self) -> Actor:
        """The caller as the operation's root field authenticated it. Nested
        fields use it without checking the token again (a WebSocket would,
        and would count each check against the rate limit)."""
        return self._session.actor if self._session is not None else await self.actor()

    async def still_authenticated(self) -> Actor:
        """Re-check the token of a running subscription (no rate limit)."""
        return (await auth.authenticate(self.deps, self.authorization())).actor

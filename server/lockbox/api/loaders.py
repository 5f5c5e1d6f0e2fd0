"""Batch loading of related objects, so nested fields cost one query per kind.

Loaders do not cache (`cache=False`): a WebSocket context lives for the whole
connection and must never serve a stale request or principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Protocol, TypeVar

from strawberry.dataloader import DataLoader

from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, Principal, SupportTicket, Tenant


class _HasId(Protocol):
    id: uuid.UUID


RowT = TypeVar("RowT", bound=_HasId)


def _by_id(
    fetch: Callable[[Sequence[uuid.UUID]], Awaitable[list[RowT]]],
) -> Callable[[list[uuid.UUID]], Awaitable[list[RowT | None]]]:
    async def load(keys: list[uuid.UUID]) -> list[RowT | None]:
        rows = {row.id: row for row in await fetch(list(set(keys)))}
        return [rows.get(key) for key in keys]

    return load


class Loaders:
    """Made on first use: most WebSocket connections never load a relation,
    and thousands of idle dashboards should not each carry four loaders."""

    @cached_property
    def tenant(self) -> DataLoader[uuid.UUID, Tenant | None]:
        return DataLoader(_by_id(store.get_tenants), cache=False)

    @cached_property
    def principal(self) -> DataLoader[uuid.UUID, Principal | None]:
        return DataLoader(_by_id(store.get_principals), cache=False)

    @cached_property
    def ticket(self) -> DataLoader[uuid.UUID, SupportTicket | None]:
        return DataLoader(_by_id(store.get_tickets), cache=False)

    @cached_property
    def request(self) -> DataLoader[uuid.UUID, AccessRequest | None]:
        return DataLoader(_by_id(store.get_requests), cache=False)

    async def tenant_of(self, key: uuid.UUID) -> Tenant:
        return _present(await self.tenant.load(key), "tenant", key)

    async def principal_of(self, key: uuid.UUID) -> Principal:
        return _present(await self.principal.load(key), "principal", key)

    async def ticket_of(self, key: uuid.UUID) -> SupportTicket:
        return _present(await self.ticket.load(key), "ticket", key)

    async def request_of(self, key: uuid.UUID) -> AccessRequest:
        return _present(await self.request.load(key), "request", key)


T = TypeVar("T")


def _present(row: T | None, what: str, key: uuid.UUID) -> T:
    # Foreign keys guarantee presence; a miss is a bug, masked to the client.
    if row is None:
        raise LookupError(f"{what} {key} vanished")
    return row

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

from lockbox.domain.cursors import Window, dense_span
from lockbox.store import queries as store
from lockbox.store.models import (
    AccessRequest,
    ActivityEvent,
    Decision,
    Principal,
    RequestApproval,
    SupportTicket,
    Tenant,
)


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


# One request's activity along one walk: (request id, how many events the
# request had when it was read, the walk).
ActivityKey = tuple[uuid.UUID, int, Window]


async def _activity_pages(keys: list[ActivityKey]) -> list[list[ActivityEvent]]:
    """The activity pages of every request of a list in one statement. A
    request's events are numbered 1, 2, 3... without gaps (the gate gives a
    rolled-back number back), so a page is a range of numbers."""
    spans = {key: dense_span(key[2], key[1]) for key in set(keys)}
    wanted = [(key[0], low, high) for key, (low, high) in spans.items() if low <= high]
    events: dict[tuple[uuid.UUID, int], ActivityEvent] = {
        (row.request_id, row.seq): row for row in await store.activity_spans(wanted)
    }
    pages: list[list[ActivityEvent]] = []
    for key in keys:
        low, high = spans[key]
        numbers = range(high, low - 1, -1) if key[2].backward else range(low, high + 1)
        pages.append([events[key[0], n] for n in numbers if (key[0], n) in events])
    return pages


async def _decisions(keys: list[uuid.UUID]) -> list[list[Decision]]:
    """The decisions on every request of a list in one statement, oldest first."""
    found: dict[uuid.UUID, list[Decision]] = {key: [] for key in keys}
    for row in await store.decisions_of_requests(list(found)):
        found[row.request_id].append(row)
    return [found[key] for key in keys]


async def _approvals(keys: list[uuid.UUID]) -> list[list[RequestApproval]]:
    """The approvals of every request of a list in one statement, oldest first."""
    found: dict[uuid.UUID, list[RequestApproval]] = {key: [] for key in keys}
    for row in await store.approvals_of(list(found)):
        found[row.request_id].append(row)
    return [found[key] for key in keys]


class Loaders:
    """Made on first use: most WebSocket connections never load a relation,
    and thousands of idle dashboards should not each carry the loaders."""

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

    @cached_property
    def activity(self) -> DataLoader[ActivityKey, list[ActivityEvent]]:
        """`load((request.id, request.activity_seq, window))`: the request's
        events along the walk, in walk order."""
        return DataLoader(_activity_pages, cache=False)

    @cached_property
    def decisions(self) -> DataLoader[uuid.UUID, list[Decision]]:
        """`load(request.id)`: the request's decisions, oldest first."""
        return DataLoader(_decisions, cache=False)

    @cached_property
    def approvals(self) -> DataLoader[uuid.UUID, list[RequestApproval]]:
        """`load(request.id)`: the request's approvals, oldest first."""
        return DataLoader(_approvals, cache=False)

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

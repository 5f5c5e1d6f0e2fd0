"""The simulated support engineer of `lockbox demo`: engineer-alice, at work
through the same use cases a real engineer's calls go through."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from lockbox.domain.cursors import Window
from lockbox.domain.errors import LockboxError
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Actor
from lockbox.services import gate, requests
from lockbox.services.auth import actor_of
from lockbox.services.deps import Deps
from lockbox.store import queries as store

# Named after the command whose output it shows up in, not after this module.
log = logging.getLogger("lockbox.demo")

ACTIONS = ["read rows", "list blobs", "read logs", "query metrics", "export diagnostics"]


async def _engineer(name: str) -> Actor:
    principal = await store.principal_by_name(name)
    assert principal is not None, f"demo principal {name} is missing"
    return actor_of(principal)


async def open_request(
    deps: Deps, engineer: Actor, world: dict[str, Any], tenant: str, resource: str, why: str
) -> str:
    request = await requests.create(
        deps,
        engineer,
        ticket_id=world["tickets"][f"{tenant}-ticket"]["id"],
        resources=[resource],
        justification=why,
        duration_seconds=None,
    )
    return str(request.id)


async def simulate(
    deps: Deps, world: dict[str, Any], *, tick_seconds: float = 4.0, new_request_every: int = 15
) -> None:
    """Work like a support engineer: act inside open windows, now and then try
    something out of scope (denied), and ask for new access about once a minute."""
    alice = await _engineer("engineer-alice")
    await open_request(
        deps,
        alice,
        world,
        "northwind",
        "/subscriptions/northwind-prod/resourceGroups/rg-db",
        "Investigating slow queries reported in the northwind ticket",
    )
    await open_request(
        deps,
        alice,
        world,
        "contoso",
        "/subscriptions/contoso-prod/resourceGroups/rg-web",
        "Reading web tier logs for the contoso ticket",
    )
    await open_request(
        deps,
        alice,
        world,
        "fabrikam",
        "/subscriptions/fabrikam-prod/resourceGroups/rg-api",
        "Tracing API timeouts for the fabrikam ticket (fabrikam requires two approvals)",
    )
    targets = itertools.cycle(["contoso-prod", "contoso-dev", "fabrikam-prod"])
    for tick in itertools.count(1):
        await asyncio.sleep(tick_seconds)
        try:
            await _work(deps, alice, tick)
            if tick % new_request_every == 0:
                target = next(targets)
                tenant = target.split("-")[0]
                await open_request(
                    deps,
                    alice,
                    world,
                    tenant,
                    f"/subscriptions/{target}/resourceGroups/rg-{tick}",
                    f"Follow-up diagnostics #{tick} for the {tenant} ticket",
                )
        except LockboxError as exc:
            log.info("demo engineer: %s", exc.message)


async def _work(deps: Deps, engineer: Actor, tick: int) -> None:
    open_requests = await requests.list_visible(
        deps, engineer, statuses=[Status.APPROVED], window=Window(10)
    )
    for request in open_requests:
        base = request.resources[0]
        resource = f"{base}/item-{tick}"
        if tick % 5 == 0:
            # Out of scope: another subscription entirely. The gate says no.
            resource = "/subscriptions/someone-elses/secrets"
        await gate.authorize(
            deps,
            engineer,
            request_id=str(request.id),
            resource=resource,
            action=ACTIONS[tick % len(ACTIONS)],
            detail={"tick": tick},
        )

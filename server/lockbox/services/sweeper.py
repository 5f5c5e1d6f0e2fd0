"""Records time-based changes (EXPIRED, COMPLETED) and announces them.

Reads never depend on it: status is computed from the clock where it is read.
It runs in every process; conditional updates make each change happen once.
"""

from __future__ import annotations

from datetime import datetime

from lockbox.domain.errors import LockboxError
from lockbox.domain.lifecycle import DEADLINES, RequestState, due_action
from lockbox.services import requests
from lockbox.services.deps import Deps
from lockbox.services.periodic import every
from lockbox.store import queries as store

BATCH = 100


async def sweep_once(deps: Deps) -> int:
    """Record every due change; the number this process recorded."""
    recorded = 0
    while True:
        now = deps.clock.now()
        due = await store.requests_due(now, BATCH)
        progress = 0
        for request in due:
            # requests_due lists the requests with a clock action due at `now`.
            state = requests.state_of(request)
            action = due_action(state, now)
            assert action is not None
            try:
                await requests.transition(deps, None, str(request.id), action)
                progress += 1
            except LockboxError:
                continue  # another process recorded it first
            if deps.metrics is not None:
                deadline = _deadline(state)
                if deadline is not None:
                    deps.metrics.swept(deadline, deps.clock.now())
        recorded += progress
        if len(due) < BATCH or progress == 0:
            if deps.metrics is not None:
                deps.metrics.sweeper_passes.inc()
            return recorded


def _deadline(state: RequestState) -> datetime | None:
    """When the clock's change on a request fell due (for the sweeper's lag)."""
    for deadline in DEADLINES:
        if state.status is deadline.status:
            at: datetime | None = getattr(state, deadline.column)
            return at
    return None


async def run(deps: Deps, interval_seconds: float) -> None:
    await every(interval_seconds, "sweeper", lambda: sweep_once(deps))

"""Open WebSockets per client address and per principal, in this process.

Each socket takes a slot for its address when it opens and one for its
principal once `connection_init` says who it is; the view gives both back
however the socket ends (`LockboxGraphQL.run`'s `finally`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What a refused socket is told to wait before it tries again.
RETRY_AFTER_SECONDS = 5


@dataclass
class SocketCount:
    """At most `limit` open sockets per key (0: no limit)."""

    limit: int
    _open: dict[str, int] = field(default_factory=dict)

    def acquire(self, key: str) -> bool:
        count = self._open.get(key, 0)
        if self.limit > 0 and count >= self.limit:
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open(self, key: str) -> int:
        return self._open.get(key, 0)

    def total(self) -> int:
        """Open sockets over every key (read by /metrics, not on any hot path)."""
        return sum(self._open.values())


@dataclass
class SocketLimits:
    """LOCKBOX_MAX_SOCKETS_PER_ADDRESS and LOCKBOX_MAX_SOCKETS_PER_PRINCIPAL."""

    per_address: SocketCount = field(default_factory=lambda: SocketCount(0))
    per_principal: SocketCount = field(default_factory=lambda: SocketCount(0))

    @classmethod
    def of(cls, per_address: int, per_principal: int) -> SocketLimits:
        return cls(SocketCount(per_address), SocketCount(per_principal))

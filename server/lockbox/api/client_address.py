"""Who is on the other end: the address that per-address limits count.

The socket's peer, unless the peer is one of our own proxies
(`LOCKBOX_TRUSTED_PROXIES`). Then `X-Forwarded-For` is read from the right,
skipping the proxies we trust: the first address that is not one of them is
the client, as the last trusted proxy saw it. Everything left of it was
written by the client and could say anything. Without trusted proxies the
header is never read (uvicorn's own proxy-header rewriting is off, see
`lockbox.app.UVICORN_OPTIONS`), so a client cannot choose its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def parse_networks(specs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`10.0.0.1`, `10.0.0.0/8`, `::1`… as networks; ValueError names a bad one."""
    networks: list[IPNetwork] = []
    for spec in specs:
        try:
            networks.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"LOCKBOX_TRUSTED_PROXIES: {spec!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _parse(entry: str) -> IPAddress | None:
    """One `X-Forwarded-For` entry: an address, maybe with a port."""
    text = entry.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client's address.

    `peer` is the socket's peer; `forwarded_for` the values of every
    `X-Forwarded-For` header, in order. The header is believed only from a
    trusted peer, and only up to the first entry that is not a trusted proxy
    (the right-most untrusted address). An entry that is not an address ends
    the trust too: the client is then the hop that handed it over.
    """
    if peer is None:
        return UNKNOWN
    hop = _parse(peer)
    if hop is None or not trusted or not _trusted(hop, trusted):
        return peer
    entries = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    for entry in reversed(entries):
        address = _parse(entry)
        if address is None:
            return str(hop)
        if not _trusted(address, trusted):
            return str(address)
        hop = address
    return str(hop)  # every hop is ours: the request started inside


def scope_client_address(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """`client_address` of an ASGI connection (HTTP or WebSocket)."""
    client = scope.get("client")
    peer = None if not client else str(client[0])
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(peer, forwarded, trusted)

"""Webhook deliveries: a signed HTTP POST of one outbox row.

The body is `{"id", "type", "occurredAt", "tenantId", "data"}` (compact UTF-8
JSON) with the headers `Lockbox-Event-Id` (the row's id: receivers
deduplicate on it, retries carry the same one) and `Lockbox-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, fresh on
every attempt.

Targets are checked twice, at creation (services.webhooks) and before every
delivery, because what a name resolves to can change: unless private targets
are allowed, every address the host resolves to must be public, and the POST
goes to one of exactly those addresses (the name is not looked up again by
the HTTP client), with the original Host header and TLS server name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable

import httpx

from lockbox.domain.notifications import delivery_body, is_public_target, signature
from lockbox.notify import DeliveryError
from lockbox.store.models import Notification, Webhook

USER_AGENT = "Lockbox-Webhooks"
# How long a name lookup may take, at creation and before each delivery.
RESOLVE_TIMEOUT_SECONDS = 5.0
# Addresses tried, in the resolver's order, when the first cannot be reached.
MAX_ADDRESSES = 3


class UnsafeTarget(Exception):
    """A webhook host that must not be called. The message names no address
    (a tenant admin must not learn what internal names resolve to)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        # An address literal cannot start resolving elsewhere; a name can.
        self.permanent = permanent


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def public_addresses(
    host: str, port: int, *, lookup_seconds: float = RESOLVE_TIMEOUT_SECONDS
) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order, if every one
    of them is public (domain.notifications.is_public_target); UnsafeTarget
    when one is not, or when the name does not resolve in time."""
    literal = _literal(host)
    shown = host if len(host) <= 80 else host[:80] + "…"
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(lookup_seconds):
            found = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError:
        raise UnsafeTarget(f"looking up host {shown!r} timed out", permanent=False) from None
    except (OSError, UnicodeError, ValueError):
        found = []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if literal and addresses and not all(is_public_target(a) for a in addresses):
        raise UnsafeTarget(f"{shown} is not a public address", permanent=True)
    if not addresses or not all(is_public_target(a) for a in addresses):
        raise UnsafeTarget(
            f"host {shown!r} does not resolve to public addresses only", permanent=False
        )
    return addresses


class WebhookTransport:
    """Sends WEBHOOK rows (notify.Transport). One HTTP client for the
    process; no redirects followed, no proxy from the environment, no
    connection kept open (each delivery connects to the address just checked)."""

    def __init__(
        self,
        allow_private: bool,
        timeout_seconds: float = 10.0,
        *,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self.unix_time = unix_time
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, notification: Notification, webhook: Webhook | None) -> None:
        if webhook is None:
            raise DeliveryError("the webhook was deleted", permanent=True)
        if not webhook.enabled:
            raise DeliveryError("the webhook is disabled", permanent=True)
        body = delivery_body(
            str(notification.id),
            notification.event,
            notification.created_at,
            str(notification.tenant_id),
            notification.payload,
        )
        try:
            async with asyncio.timeout(self.timeout_seconds):
                status = await self._post(webhook, str(notification.id), body)
        except UnsafeTarget as refused:
            raise DeliveryError(
                f"target refused: {refused.message}"[:200], permanent=refused.permanent
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise DeliveryError("timed out") from None
        except httpx.ConnectError:
            raise DeliveryError("could not connect") from None
        except httpx.InvalidURL:
            raise DeliveryError("the webhook URL is not valid", permanent=True) from None
        except httpx.HTTPError as failed:
            raise DeliveryError(f"request failed ({type(failed).__name__})") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")

    async def _post(self, webhook: Webhook, event_id: str, body: bytes) -> int:
        """POST the body; the response status (the response body is not read)."""
        url = httpx.URL(webhook.url)
        headers = {
            "Content-Type": "application/json",
            "Lockbox-Event-Id": event_id,
            "User-Agent": USER_AGENT,
        }
        host, port = url.raw_host.decode("ascii"), url.port or _default_port(url)
        if self.allow_private or _literal(host):
            if not self.allow_private:
                await public_addresses(host, port)
            return await self._attempt(url, headers, body, webhook.secret)
        addresses = await public_addresses(host, port)
        # Pin the connection to the checked addresses: the client must not
        # look the name up again (it could answer differently the second time).
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        unreachable: httpx.ConnectError | None = None
        for address in addresses[:MAX_ADDRESSES]:
            try:
                return await self._attempt(
                    url.copy_with(host=address), headers, body, webhook.secret, extensions
                )
            except httpx.ConnectError as failed:
                unreachable = failed
        assert unreachable is not None  # public_addresses never answers an empty list
        raise unreachable

    async def _attempt(
        self,
        url: httpx.URL,
        headers: dict[str, str],
        body: bytes,
        secret: str,
        extensions: dict[str, str] | None = None,
    ) -> int:
        # Signed at each attempt: a retry carries a fresh timestamp.
        signed = {**headers, "Lockbox-Signature": signature(secret, int(self.unix_time()), body)}
        request = self.client.build_request(
            "POST", url, content=body, headers=signed, extensions=extensions or {}
        )
        response = await self.client.send(request, stream=True)
        await response.aclose()
        return response.status_code


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80

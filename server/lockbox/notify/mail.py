"""The mail channel: outbox rows rendered as mails and sent over SMTP.

`render` turns a row into a mail (pure: the same row gives the same mail,
Message-ID included, so a resend is recognisably the same mail);
`MailTransport` sends it with aiosmtplib. `smtp://` upgrades with STARTTLS
when the server offers it, `smtps://` speaks TLS from the first byte, and a
password is only ever sent over TLS.
"""

from __future__ import annotations

import asyncio
import html
import socket
import ssl
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiosmtplib

from lockbox.domain.errors import BadUserInput
from lockbox.domain.notifications import Audience, Event, clean_address, message_id
from lockbox.notify import DeliveryError
from lockbox.settings import Settings
from lockbox.store.models import Notification, Webhook

# The whole conversation with the SMTP server (connect, TLS, login, send) must
# end well within the outbox's claim on the row (60 s by default).
TIMEOUT_SECONDS = 20.0

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}

OUTCOMES: dict[str, str] = {
    Event.REQUEST_CREATED: "pending",
    Event.REQUEST_APPROVED: "approved",
    Event.REQUEST_DENIED: "denied",
    Event.REQUEST_EXPIRED: "expired",
    Event.REQUEST_REVOKED: "revoked",
    Event.REQUEST_COMPLETED: "completed",
    Event.REQUEST_CANCELED: "canceled",
}


# --- the SMTP server ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mail goes, parsed from LOCKBOX_SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """`smtp://[user:pass@]host[:port]` or `smtps://…`; ValueError naming
        LOCKBOX_SMTP_URL (and never showing the password) otherwise."""

        def bad(why: str) -> ValueError:
            return ValueError(
                f"LOCKBOX_SMTP_URL must look like smtp://[user:pass@]host:port or "
                f"smtps://[user:pass@]host:port ({why}), got {_redact_url(url)!r}"
            )

        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise bad(str(exc)) from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise bad("the scheme is neither smtp nor smtps")
        if not parts.hostname:
            raise bad("no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise bad("nothing may follow host:port")
        username = None if parts.username is None else unquote(parts.username)
        if username == "":
            raise bad("empty user name")
        password = None if parts.password is None else unquote(parts.password)
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[scheme],
            implicit_tls=scheme == "smtps",
            username=username,
            password=None if username is None else (password or ""),
        )

    @property
    def address(self) -> str:
        """The server without its credentials, e.g. `smtps://mail.example.com:465`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{host}:{self.port}"


def _redact_url(url: str) -> str:
    """`url` with any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trusted CAs, plus those of `ca_file` (LOCKBOX_SMTP_CA_FILE)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"LOCKBOX_SMTP_CA_FILE {ca_file!r} is not a readable PEM file of CA "
                f"certificates: {exc}"
            ) from None
    return context


def sender_address(mail_from: str) -> str:
    """The address in LOCKBOX_MAIL_FROM (which may be `Name <addr>`), or ValueError."""
    _, address = parseaddr(mail_from)
    try:
        return clean_address(address, "LOCKBOX_MAIL_FROM")
    except BadUserInput as exc:
        raise ValueError(f"LOCKBOX_MAIL_FROM {mail_from!r} is not a valid e-mail address") from exc


# --- the transport -----------------------------------------------------------------


class MailTransport:
    """Sends EMAIL rows through one SMTP server (the outbox's mail transport)."""

    def __init__(
        self,
        smtp_url: str,
        *,
        mail_from: str,
        link_base: str,
        ca_file: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.server = SmtpServer.from_url(smtp_url)
        self.mail_from = mail_from
        self.sender = sender_address(mail_from)
        self.link_base = link_base.rstrip("/")
        self.timeout = timeout
        self._tls = tls_context(ca_file)
        self._local_hostname: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailTransport:
        """From the settings, whose smtp_url must be set."""
        if not settings.smtp_url:
            raise ValueError("LOCKBOX_SMTP_URL is not set")
        return cls(
            settings.smtp_url,
            mail_from=settings.mail_from,
            link_base=settings.link_base,
            ca_file=settings.smtp_ca_file,
        )

    def render(self, notification: Notification) -> EmailMessage:
        return render(notification, mail_from=self.mail_from, link_base=self.link_base)

    async def send(self, notification: Notification, webhook: Webhook | None = None) -> None:
        if not notification.recipient:
            raise DeliveryError("the mail has no recipient", permanent=True)
        try:
            message = self.render(notification)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"the mail cannot be written: {exc}", permanent=True) from None
        try:
            async with asyncio.timeout(self.timeout):
                await self._send(message, notification.recipient)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # OSError covers refused connections and ssl.SSLError; anything
            # else is a bug, left for the outbox worker to log.
            raise DeliveryError(self._explain(exc)) from None

    async def _send(self, message: EmailMessage, recipient: str) -> None:
        server = self.server
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.implicit_tls,
            start_tls=None,  # smtp://: upgrade when the server offers STARTTLS
            tls_context=self._tls,
            timeout=self.timeout,
            local_hostname=self._local_hostname,
        )
        async with client:
            if server.username is not None:
                if client.get_transport_info("sslcontext") is None:
                    raise DeliveryError(
                        f"SMTP server {server.address} does not offer STARTTLS; "
                        "the password is only ever sent over TLS"
                    )
                await client.login(server.username, server.password or "")
            await client.send_message(message, sender=self.sender, recipients=[recipient])

    def _explain(self, exc: BaseException) -> str:
        """A short account of a failure, for the row's lastError: never the password."""
        where = f"SMTP server {self.server.address}"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            text = f"{where} refused the login: {_reply(exc.code, exc.message)}"
        elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            first = exc.recipients[0] if exc.recipients else None
            reply = "" if first is None else f": {_reply(first.code, first.message)}"
            text = f"{where} refused the recipient{reply}"
        elif isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            text = f"{where} refused the recipient: {_reply(exc.code, exc.message)}"
        elif isinstance(exc, aiosmtplib.SMTPSenderRefused):
            text = f"{where} refused the sender: {_reply(exc.code, exc.message)}"
        elif isinstance(exc, aiosmtplib.SMTPConnectResponseError):
            text = f"{where} refused the connection: {_reply(exc.code, exc.message)}"
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"{where} answered {_reply(exc.code, exc.message)}"
        elif isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
            cause = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
            assert isinstance(cause, ssl.SSLError)
            text = f"TLS with {where} failed: {cause.reason or cause}"
        elif isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
            text = f"timed out connecting to {where}"
        elif isinstance(exc, TimeoutError):
            text = f"{where} did not finish within {self.timeout:g} s"
        elif isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            reason = getattr(cause, "strerror", None) or str(cause or exc)
            text = f"could not connect to {where}: {reason}"
        elif isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            text = f"{where} closed the connection"
        elif isinstance(exc, aiosmtplib.SMTPException):
            text = f"{where}: {exc.message}"
        elif isinstance(exc, OSError):
            text = f"could not talk to {where}: {exc.strerror or exc}"
        else:
            text = f"sending through {where} failed ({type(exc).__name__})"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        password = self.server.password
        if password:
            text = text.replace(password, "***")
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:299] + "…"


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(str(message).split())}".strip()


# --- rendering ---------------------------------------------------------------------

Value = str | list[str]


@dataclass(frozen=True, slots=True)
class _Mail:
    """One mail's content, written once and shown as plain text and as HTML."""

    subject: str
    intro: str
    rows: Sequence[tuple[str, Value]]
    link: tuple[str, str]  # (what it is for, url)
    footer: str


def render(notification: Notification, *, mail_from: str, link_base: str) -> EmailMessage:
    """The mail for one EMAIL row: same row, same mail (Message-ID included)."""
    if not notification.recipient:
        raise ValueError("the notification has no recipient")
    payload: dict[str, Any] = dict(notification.payload or {})
    mail = _content(notification.event, payload, link_base.rstrip("/"))
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = notification.recipient
    message["Subject"] = _one_line(mail.subject, 200)
    message["Date"] = format_datetime(_utc(notification.created_at or datetime.now(UTC)))
    domain = sender_address(mail_from).rpartition("@")[2]
    message["Message-ID"] = message_id(str(notification.id), domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Lockbox-Event"] = notification.event
    message.set_content(_text(mail))
    message.add_alternative(_html(mail), subtype="html")
    # A boundary of the row's own (not a random one): the same row, the same
    # bytes. "=_" never occurs in quoted-printable text.
    message.set_boundary(f"=_lockbox_{uuid.UUID(str(notification.id)).hex}")
    return message


def _content(event: str, p: dict[str, Any], link_base: str) -> _Mail:
    audience = p.get("audience")
    tenant = _str(p.get("tenantName"), "your tenant")
    engineer = _str(p.get("engineer"), "an engineer")
    request_id = _str(p.get("requestId"), "")
    resources = [str(r) for r in p.get("resources") or []]
    link_url = f"{link_base}/dashboard#/requests/{quote(request_id, safe='')}"
    deadline = _when(p.get("expiresAt"))
    duration = _duration(p.get("durationSeconds"))
    window = _window(p)
    ticket = _ticket(p)
    justification = _str(p.get("justification"), "(none given)")
    if audience == Audience.DECIDER:
        return _Mail(
            subject=f"[Lockbox] {tenant}: {engineer} asks for access (decide by {deadline})",
            intro=(
                f"{engineer} asks for access to {_count(resources, 'resource')} of {tenant} "
                f"and waits for a decision."
            ),
            rows=[
                ("Tenant", tenant),
                ("Ticket", ticket),
                ("Engineer", engineer),
                ("Resources", resources),
                ("Justification", justification),
                ("Duration", f"{duration} (requested)"),
                ("Decide by", deadline),
                ("Request", request_id),
            ],
            link=("Review and decide", link_url),
            footer=(
                f"Unanswered, the request expires at {deadline} and no access is granted. "
                f"You receive this mail because you can decide requests of {tenant}, "
                f"or your address is on its notification list."
            ),
        )
    if audience == Audience.ADMIN:
        return _Mail(
            subject=f"[Lockbox] {tenant}: {engineer} was granted access automatically",
            intro=(
                f"{engineer} was granted access to {_count(resources, 'resource')} of "
                f"{tenant} automatically, because lockbox is disabled for {tenant}. "
                f"No decision is needed; this mail is for your records."
            ),
            rows=[
                ("Tenant", tenant),
                ("Ticket", ticket),
                ("Engineer", engineer),
                ("Resources", resources),
                ("Justification", justification),
                ("Duration", duration),
                ("Access window", window),
                ("Request", request_id),
            ],
            link=("Watch the activity or revoke access", link_url),
            footer=(
                f"You receive this mail because you administer {tenant}, or your address "
                f"is on its notification list. Turn lockbox on to decide such requests."
            ),
        )
    if audience == Audience.EMERGENCY:
        return _Mail(
            subject=f"[Lockbox] {tenant}: emergency access by {engineer}, to review",
            intro=(
                f"{engineer} used emergency (break-glass) access to "
                f"{_count(resources, 'resource')} of {tenant}. It was approved at once, "
                f"as {tenant}'s settings allow, and waits for your review."
            ),
            rows=[
                ("Tenant", tenant),
                ("Ticket", ticket),
                ("Engineer", engineer),
                ("Resources", resources),
                ("Justification", justification),
                ("Duration", duration),
                ("Access window", window),
                ("Request", request_id),
            ],
            link=("Review the emergency access (or revoke it)", link_url),
            footer=(
                f"You receive this mail because you can decide requests of {tenant}, "
                f"or your address is on its notification list."
            ),
        )
    if audience == Audience.ENGINEER:
        return _engineer_mail(event, p, tenant, request_id, resources, ticket, window, link_url)
    raise ValueError(f"unknown mail audience {audience!r}")


def _engineer_mail(
    event: str,
    p: dict[str, Any],
    tenant: str,
    request_id: str,
    resources: list[str],
    ticket: str,
    window: str,
    link_url: str,
) -> _Mail:
    outcome = OUTCOMES.get(event, _str(p.get("status"), "updated").lower())
    automatic = bool(p.get("automatic"))
    decider = _str(p.get("decidedBy"), "")
    reason = _str(p.get("decisionReason"), "")
    rows: list[tuple[str, Value]] = [
        ("Request", request_id),
        ("Tenant", tenant),
        ("Ticket", ticket),
        ("Resources", resources),
        ("Outcome", f"{outcome} automatically" if automatic else outcome),
    ]
    if event == Event.REQUEST_EXPIRED:
        deadline = _when(p.get("expiresAt"))
        subject = f"[Lockbox] {tenant}: your access request expired unanswered"
        intro = f"No one at {tenant} decided your access request before {deadline}; it expired."
        rows.append(("Reason", f"no decision before {deadline}"))
    elif event == Event.REQUEST_REVOKED:
        # The request records who approved it, not who revoked it (the
        # revoker's reason replaces the approver's): name no revoker.
        ended = _when(p.get("accessEndsAt"))
        subject = f"[Lockbox] {tenant}: your access was revoked"
        intro = f"{tenant} revoked your access; the window closed at {ended}."
        if decider:
            rows.append(("Approved by", decider))
        rows.append(("Reason", reason or "(none given)"))
        rows.append(("Access window", window))
    else:
        if automatic:
            subject = f"[Lockbox] {tenant}: your access request was approved automatically"
            intro = f"Your access request was approved at once: lockbox is disabled for {tenant}."
        else:
            by = f" by {decider}" if decider else ""
            subject = f"[Lockbox] {tenant}: your access request was {outcome}{by}"
            intro = f"Your access request for {tenant} was {outcome}{by}."
        if decider:
            rows.append(("Decided by", decider))
        rows.append(("Reason", reason or "(none given)"))
    if event == Event.REQUEST_APPROVED:
        rows.append(("Access window", window))
    return _Mail(
        subject=subject,
        intro=intro,
        rows=rows,
        link=("See the request", link_url),
        footer="You receive this mail because you made this access request.",
    )


def _text(mail: _Mail) -> str:
    lines = [_fill(mail.intro), ""]
    width = max(len(label) for label, _ in mail.rows) + 2
    for label, value in mail.rows:
        head = f"{label}:".ljust(width)
        if isinstance(value, list):
            lines.append(head.rstrip())
            lines.extend(f"  - {item}" for item in value or ["(none)"])
        else:
            first, *rest = value.splitlines() or [""]
            lines.append(f"{head}{first}")
            lines.extend(" " * width + line for line in rest)
    lines += ["", f"{mail.link[0]}: {mail.link[1]}", "", _fill(mail.footer), ""]
    return "\n".join(lines)


def _html(mail: _Mail) -> str:
    e = html.escape
    cell = 'style="padding:4px 12px 4px 0;vertical-align:top;text-align:left"'
    rows = []
    for label, value in mail.rows:
        if isinstance(value, list):
            items = "".join(f"<li><code>{e(item)}</code></li>" for item in value)
            shown = f'<ul style="margin:0;padding-left:18px">{items}</ul>'
        else:
            shown = f'<span style="white-space:pre-wrap">{e(value)}</span>'
        rows.append(f"<tr><th {cell}>{e(label)}</th><td {cell}>{shown}</td></tr>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{e(mail.subject)}</title></head>\n"
        '<body style="font-family:sans-serif;font-size:14px;color:#222">\n'
        f"<p>{e(mail.intro)}</p>\n"
        f'<table style="border-collapse:collapse">\n{"".join(rows)}\n</table>\n'
        f'<p><a href="{e(mail.link[1])}">{e(mail.link[0])}</a><br>'
        f'<span style="color:#666">{e(mail.link[1])}</span></p>\n'
        f'<p style="color:#666;font-size:12px">{e(mail.footer)}</p>\n'
        "</body></html>\n"
    )


# --- formatting --------------------------------------------------------------------


def _fill(paragraph: str) -> str:
    return textwrap.fill(paragraph, 76, break_long_words=False, break_on_hyphens=False)


def _str(value: Any, default: str) -> str:
    return default if value is None or value == "" else str(value)


def _one_line(text: str, limit: int) -> str:
    """A header value: no line breaks (no header injection), bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _when(value: Any) -> str:
    """An ISO-8601 instant as `2026-12-09 10:00 UTC`."""
    if not value:
        return "(unknown)"
    try:
        at = _utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _window(p: dict[str, Any]) -> str:
    starts, ends = p.get("accessStartsAt"), p.get("accessEndsAt")
    if not starts and not ends:
        return "(not open)"
    return f"{_when(starts)} to {_when(ends)}"


def _ticket(p: dict[str, Any]) -> str:
    title = _str(p.get("ticketTitle"), "(untitled)")
    ticket_id = _str(p.get("ticketId"), "")
    return f"{title} (id {ticket_id})" if ticket_id else title


def _count(items: list[str], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _duration(value: Any) -> str:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return "(unknown)"
    return duration_words(seconds)


def duration_words(seconds: int) -> str:
    """`28800` as "8 hours", `5400` as "1 hour 30 minutes", `90000` as "1 day 1 hour"."""
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = [
        f"{n} {unit}" + ("" if n == 1 else "s")
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts)

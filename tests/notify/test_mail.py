"""The mail channel: what a mail says, and sending it to a real SMTP server
(plain, STARTTLS with AUTH, implicit TLS) and failing cleanly when it cannot."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from lockbox.domain.notifications import Channel, DeliveryStatus, Event, message_id
from lockbox.notify import DeliveryError
from lockbox.notify.mail import MailTransport, SmtpServer, duration_words, render
from lockbox.notify.sink import HeldPrinter, LoopbackController, MailSink, ReceivedMail
from lockbox.services.auth import TOKEN_PREFIX, new_secret
from lockbox.settings import Settings
from lockbox.store.models import Notification
from tests.notify.smtp_support import (  # noqa: F401 - fixtures
    Mail,
    SmtpTestServer,
    TlsFiles,
    parse_mail,
    smtp_fixture,
    smtp_server,
    tls_files_fixture,
)

# aiosmtpd warns about AUTH without STARTTLS: right for the test that wants a
# server taking passwords in clear, and wrong for smtps (TLS from the start).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

MAIL_FROM = "lockbox@example.org"
LINK_BASE = "https://lockbox.example.org"
REQUEST_ID = "5f0c2a4e-1d7b-4c8e-9a51-3f2b7c6d8e90"
TICKET_ID = "0b7d6c54-93a2-4f0e-8d6b-2a1c9e8f7a65"
RESOURCES = [
    "/subscriptions/contoso-prod/resourceGroups/web",
    "/subscriptions/contoso-dev/resourceGroups/db/providers/sql/servers/orders",
]
LINK = f"{LINK_BASE}/dashboard#/requests/{REQUEST_ID}"
# Anything that looks like an API token (services.auth: "lbx_" + urlsafe base64).
TOKEN_PATTERN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{8,}")

PENDING = {
    "requestId": REQUEST_ID,
    "tenantId": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    "tenantName": "contoso",
    "ticketId": TICKET_ID,
    "ticketTitle": "Customer reports 500s on checkout",
    "engineerId": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
    "engineer": "engineer-alice",
    "resources": RESOURCES,
    "justification": "Investigate the <b>500s</b> & fix the pool",
    "durationSeconds": 8 * 3600,
    "status": "PENDING",
    "createdAt": "2026-12-09T08:00:00+00:00",
    "expiresAt": "2026-12-09T10:00:00+00:00",
    "decidedAt": None,
    "decidedBy": None,
    "decisionReason": None,
    "accessStartsAt": None,
    "accessEndsAt": None,
    "automatic": False,
}
APPROVED = {
    **PENDING,
    "status": "APPROVED",
    "decidedAt": "2026-12-09T08:30:00+00:00",
    "decidedBy": "contoso-admin",
    "decisionReason": "ticket checks out",
    "accessStartsAt": "2026-12-09T08:30:00+00:00",
    "accessEndsAt": "2026-12-09T16:30:00+00:00",
}


def notification(
    audience: str,
    event: Event = Event.REQUEST_CREATED,
    *,
    recipient: str | None = "contoso-admin@example.com",
    id: uuid.UUID | None = None,
    **payload: Any,
) -> Notification:
    """An EMAIL outbox row as the write path stages it (unsaved: no database)."""
    base = PENDING if event is Event.REQUEST_CREATED else APPROVED
    created = datetime(2026, 12, 9, 8, 0, 5, tzinfo=UTC)
    return Notification(
        id=id or uuid.uuid4(),
        tenant_id=uuid.UUID(str(PENDING["tenantId"])),
        request_id=uuid.UUID(REQUEST_ID),
        channel=Channel.EMAIL,
        event=event.value,
        recipient=recipient,
        payload={**base, **payload, "audience": audience},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=created,
        created_at=created,
    )


def rendered(row: Notification, mail_from: str = MAIL_FROM) -> Mail:
    """The mail as a receiver parses it (after a trip through bytes)."""
    message = render(row, mail_from=mail_from, link_base=LINK_BASE)
    return parse_mail(message.as_bytes())


def flat(text: str) -> str:
    """`text` with its line breaks and runs of spaces as single spaces."""
    return " ".join(text.split())


def transport(url: str, **options: Any) -> MailTransport:
    return MailTransport(url, mail_from=MAIL_FROM, link_base=LINK_BASE, **options)


# --- what a mail says ------------------------------------------------------------------


def test_a_deciders_mail_names_everything_needed_to_decide_in_both_parts() -> None:
    mail = rendered(notification("decider"))

    assert mail.message["From"] == MAIL_FROM
    assert mail.message["To"] == "contoso-admin@example.com"
    assert mail.subject == (
        "[Lockbox] contoso: engineer-alice asks for access (decide by 2026-12-09 10:00 UTC)"
    )
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.message["Date"].datetime == datetime(2026, 12, 9, 8, 0, 5, tzinfo=UTC)
    for body in (flat(mail.text), flat(mail.html)):
        for needed in (
            "contoso",
            TICKET_ID,
            "Customer reports 500s on checkout",
            "engineer-alice",
            *RESOURCES,
            "8 hours",
            "2026-12-09 10:00 UTC",
            REQUEST_ID,
            LINK,
        ):
            assert needed in body, (needed, body)
    assert "Investigate the <b>500s</b> & fix the pool" in mail.text
    assert "Investigate the &lt;b&gt;500s&lt;/b&gt; &amp; fix the pool" in mail.html
    assert "<b>500s</b>" not in mail.html
    assert f'href="{LINK}"' in mail.html


def test_every_value_is_html_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    mail = rendered(
        notification(
            "decider",
            tenantName=hostile,
            engineer=hostile,
            ticketTitle=hostile,
            resources=[hostile],
            justification=hostile,
        )
    )
    assert "<script>" not in mail.html
    assert mail.html.count("&lt;script&gt;") >= 5
    assert hostile in mail.text


def test_the_admin_variant_says_it_was_approved_automatically_with_the_window() -> None:
    row = notification(
        "admin",
        Event.REQUEST_APPROVED,
        tenantName="northwind",
        automatic=True,
        decidedBy=None,
        decisionReason=None,
    )
    mail = rendered(row)

    assert "northwind" in mail.subject and "automatically" in mail.subject
    for body in (flat(mail.text), flat(mail.html)):
        assert "automatically" in body
        assert "lockbox is disabled for northwind" in body
        assert "No decision is needed" in body
        assert "2026-12-09 08:30 UTC to 2026-12-09 16:30 UTC" in body
        assert "engineer-alice" in body and TICKET_ID in body and LINK in body
        assert all(resource in body for resource in RESOURCES)


def test_the_emergency_variant_asks_every_decider_to_review_break_glass_access() -> None:
    row = notification("emergency", Event.REQUEST_EMERGENCY, emergency=True, decidedBy=None)
    mail = rendered(row)

    assert mail.subject == "[Lockbox] contoso: emergency access by engineer-alice, to review"
    for body in (flat(mail.text), flat(mail.html)):
        assert "emergency (break-glass) access" in body
        assert "waits for your review" in body
        assert "2026-12-09 08:30 UTC to 2026-12-09 16:30 UTC" in body
        assert "engineer-alice" in body and TICKET_ID in body and LINK in body
        assert all(resource in body for resource in RESOURCES)


@pytest.mark.parametrize(
    ("event", "changes", "outcome", "reason"),
    [
        (Event.REQUEST_APPROVED, {}, "approved", "ticket checks out"),
        (
            Event.REQUEST_DENIED,
            {"status": "DENIED", "decisionReason": "no ticket context", "accessStartsAt": None},
            "denied",
            "no ticket context",
        ),
        (
            Event.REQUEST_REVOKED,
            {"status": "REVOKED", "decisionReason": "done here"},
            "revoked",
            "done here",
        ),
        (
            Event.REQUEST_EXPIRED,
            {"status": "EXPIRED", "decidedBy": None, "decisionReason": None},
            "expired",
            "no decision before 2026-12-09 10:00 UTC",
        ),
    ],
)
def test_an_engineers_mail_names_the_request_its_resources_the_outcome_and_the_reason(
    event: Event, changes: dict[str, Any], outcome: str, reason: str
) -> None:
    row = notification("engineer", event, recipient="engineer-alice@example.com", **changes)
    mail = rendered(row)

    assert mail.message["To"] == "engineer-alice@example.com"
    assert outcome in mail.subject and "contoso" in mail.subject
    for body in (flat(mail.text), flat(mail.html)):
        assert REQUEST_ID in body
        assert all(resource in body for resource in RESOURCES)
        assert outcome in body
        assert reason in body
    if event is Event.REQUEST_APPROVED:
        assert "2026-12-09 16:30 UTC" in mail.text
        assert "approved by contoso-admin" in mail.subject
    if event is Event.REQUEST_REVOKED:
        # The request records its approver, not its revoker: no "revoked by".
        assert "revoked by" not in flat(mail.text)
        assert "Approved by:" in mail.text


def test_an_engineers_mail_of_an_automatic_approval_says_so() -> None:
    row = notification(
        "engineer", Event.REQUEST_APPROVED, automatic=True, decidedBy=None, decisionReason=None
    )
    mail = rendered(row)
    assert "approved automatically" in mail.subject
    assert "approved automatically" in flat(mail.text)


def test_the_message_id_is_derived_from_the_row_so_a_resend_is_the_same_mail() -> None:
    row = notification("decider")
    first = rendered(row)
    second = rendered(row)
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.message["Message-ID"] == message_id(str(row.id), "example.org")
    assert first.raw == second.raw  # rendering is pure: the same row, the same bytes
    other = rendered(notification("decider"))
    assert other.message["Message-ID"] != first.message["Message-ID"]
    # A display name in LOCKBOX_MAIL_FROM does not change the domain.
    named = rendered(row, mail_from="Lockbox <lockbox@example.org>")
    assert named.message["Message-ID"] == first.message["Message-ID"]
    assert named.message["From"].addresses[0].addr_spec == MAIL_FROM


def test_no_mail_carries_a_token_or_any_other_secret() -> None:
    token = new_secret()
    extra: dict[str, Any] = {
        "token": token,
        "secret": "whsec-" + token,
        "authorization": f"Bearer {token}",
    }
    rows = [
        notification("decider", **extra),
        notification("admin", Event.REQUEST_APPROVED, automatic=True, **extra),
        *(
            notification("engineer", event, **extra)
            for event in (
                Event.REQUEST_APPROVED,
                Event.REQUEST_DENIED,
                Event.REQUEST_EXPIRED,
                Event.REQUEST_REVOKED,
            )
        ),
    ]
    for row in rows:
        mail = rendered(row)
        for text in (mail.raw.decode(), mail.text, mail.html):
            assert token not in text
            assert not TOKEN_PATTERN.search(text), text


def test_header_values_cannot_smuggle_headers() -> None:
    mail = rendered(notification("decider", tenantName="contoso\r\nBcc: thief@example.com"))
    assert mail.message["Bcc"] is None
    assert "\n" not in mail.subject and "\r" not in mail.subject


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (45, "45 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
        (3600, "1 hour"),
        (5400, "1 hour 30 minutes"),
        (8 * 3600, "8 hours"),
        (86_400, "1 day"),
        (90_000, "1 day 1 hour"),
        (3 * 86_400, "3 days"),
    ],
)
def test_durations_are_written_in_words(seconds: int, words: str) -> None:
    assert duration_words(seconds) == words


# --- configuration ------------------------------------------------------------------------


def test_smtp_urls_are_parsed_with_percent_decoded_credentials() -> None:
    assert SmtpServer.from_url("smtp://mail.example.com:587") == SmtpServer(
        "mail.example.com", 587, implicit_tls=False
    )
    assert SmtpServer.from_url("smtps://mail.example.com") == SmtpServer(
        "mail.example.com", 465, implicit_tls=True
    )
    assert SmtpServer.from_url("smtp://relay").port == 25
    server = SmtpServer.from_url("SMTP://ann%40corp:p%40ss%3Aw%2Frd%25@[::1]:2525")
    assert (server.host, server.port) == ("::1", 2525)
    assert (server.username, server.password) == ("ann@corp", "p@ss:w/rd%")
    assert server.address == "smtp://[::1]:2525"
    assert SmtpServer.from_url("smtp://ann@relay:25").password == ""


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com:25",
        "mail.example.com:25",
        "smtp://",
        "smtp://user:hunter2@mail.example.com:notaport",
        "smtp://user:hunter2@mail.example.com:99999",
        "smtp://mail.example.com:25/path",
        "smtp://mail.example.com:25?tls=1",
    ],
)
def test_a_bad_smtp_url_is_a_clear_error_at_start_up_without_the_password(url: str) -> None:
    with pytest.raises(ValueError, match="LOCKBOX_SMTP_URL") as caught:
        transport(url)
    assert "hunter2" not in str(caught.value)


def test_a_missing_ca_file_or_a_bad_sender_is_a_clear_error_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LOCKBOX_SMTP_CA_FILE"):
        transport("smtp://127.0.0.1:25", ca_file=str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="LOCKBOX_SMTP_CA_FILE"):
        transport("smtp://127.0.0.1:25", ca_file=str(tmp_path / "junk.pem"))
    with pytest.raises(ValueError, match="LOCKBOX_MAIL_FROM"):
        MailTransport("smtp://127.0.0.1:25", mail_from="lockbox", link_base=LINK_BASE)


def test_the_transport_is_built_from_the_settings() -> None:
    settings = Settings(
        smtp_url="smtps://mail.example.com",
        mail_from="Lockbox <lockbox@example.org>",
        public_url="https://lockbox.example.org/",
    )
    built = MailTransport.from_settings(settings)
    assert built.server.address == "smtps://mail.example.com:465"
    assert built.link_base == LINK_BASE
    assert built.sender == MAIL_FROM
    with pytest.raises(ValueError, match="LOCKBOX_SMTP_URL"):
        MailTransport.from_settings(Settings())


# --- sending to a real SMTP server -------------------------------------------------------


async def test_a_mail_is_sent_over_plain_smtp(smtp: SmtpTestServer) -> None:
    row = notification("decider")
    await transport(smtp.url).send(row, None)

    mail = await smtp.next_mail()
    assert mail.sender == MAIL_FROM
    assert mail.recipients == ("contoso-admin@example.com",)
    assert mail.message["Message-ID"] == message_id(str(row.id), "example.org")
    assert mail.subject.startswith("[Lockbox] contoso: engineer-alice asks for access")
    assert LINK in mail.text and LINK in mail.html
    assert all(resource in mail.text for resource in RESOURCES)


async def test_a_resend_is_recognisably_the_same_mail(smtp: SmtpTestServer) -> None:
    row = notification("engineer", Event.REQUEST_DENIED, recipient="engineer-alice@example.com")
    sender = transport(smtp.url)
    await sender.send(row, None)
    await sender.send(row, None)
    first, second = await smtp.next_mail(), await smtp.next_mail()
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.subject == second.subject
    assert first.text == second.text


async def test_starttls_with_auth_and_a_private_ca(tls_files: TlsFiles) -> None:
    user, password = "lockbox@corp", "p@ss:w/rd% 1"
    async with smtp_server(tls=tls_files, credentials=(user, password)) as smtp:
        url = smtp.url_with(user, password)
        assert url.startswith("smtp://lockbox%40corp:p%40ss%3Aw%2Frd%25%201@127.0.0.1:")
        await transport(url, ca_file=str(tls_files.ca_file)).send(notification("decider"), None)

        mail = await smtp.next_mail()
        assert mail.recipients == ("contoso-admin@example.com",)
        assert "engineer-alice" in mail.text


async def test_smtps_implicit_tls_with_auth(tls_files: TlsFiles) -> None:
    async with smtp_server(tls=tls_files, implicit_tls=True, credentials=("ann", "pw")) as smtp:
        assert smtp.url.startswith("smtps://127.0.0.1:")
        sender = transport(smtp.url_with("ann", "pw"), ca_file=str(tls_files.ca_file))
        await sender.send(notification("decider"), None)

        mail = await smtp.next_mail()
        assert mail.recipients == ("contoso-admin@example.com",)


async def test_starttls_with_a_certificate_nobody_vouches_for_fails(tls_files: TlsFiles) -> None:
    async with smtp_server(tls=tls_files, require_starttls=True) as smtp:
        with pytest.raises(DeliveryError) as caught:
            await transport(smtp.url).send(notification("decider"), None)  # no CA file
        assert "TLS" in caught.value.message
        assert "certificate" in caught.value.message.lower()
        assert not caught.value.permanent
        smtp.assert_no_mail()


async def test_a_wrong_password_fails_without_showing_the_password(tls_files: TlsFiles) -> None:
    async with smtp_server(tls=tls_files, credentials=("ann", "right-one")) as smtp:
        url = smtp.url_with("ann", "Wr0ng-Secret")
        with pytest.raises(DeliveryError) as caught:
            await transport(url, ca_file=str(tls_files.ca_file)).send(notification("decider"), None)
        assert "refused the login" in caught.value.message
        assert "535" in caught.value.message
        assert "Wr0ng-Secret" not in caught.value.message
        assert "Wr0ng-Secret" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        smtp.assert_no_mail()


async def test_a_password_is_never_sent_without_tls() -> None:
    async with smtp_server(credentials=("ann", "in-clear")) as smtp:  # AUTH offered in clear
        with pytest.raises(DeliveryError) as caught:
            await transport(smtp.url_with("ann", "in-clear")).send(notification("decider"), None)
        assert "STARTTLS" in caught.value.message
        assert "in-clear" not in caught.value.message
        smtp.assert_no_mail()


async def test_a_refused_connection_is_a_delivery_error() -> None:
    async with smtp_server() as smtp:
        url = smtp.url  # a port that was just in use, now closed
    with pytest.raises(DeliveryError) as caught:
        await transport(url).send(notification("decider"), None)
    assert "could not connect" in caught.value.message
    assert url.removeprefix("smtp://") in caught.value.message
    assert not caught.value.permanent


class RefusingHandler:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return "550 5.1.1 <mailbox unavailable>"


@pytest.fixture
async def refusing_server() -> AsyncIterator[str]:
    controller = LoopbackController(RefusingHandler())
    await asyncio.to_thread(controller.start)
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        await asyncio.to_thread(controller.stop)


async def test_a_refused_recipient_is_a_delivery_error_that_is_retried(
    refusing_server: str,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await transport(refusing_server).send(notification("decider"), None)
    assert "refused the recipient" in caught.value.message
    assert "550" in caught.value.message
    assert not caught.value.permanent


async def test_a_server_that_never_answers_times_out() -> None:
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(DeliveryError) as caught:
            async with asyncio.timeout(10):
                await transport(f"smtp://127.0.0.1:{port}", timeout=0.3).send(
                    notification("decider"), None
                )
        assert connected.is_set()
        assert "0.3 s" in caught.value.message or "timed out" in caught.value.message
    finally:
        server.close()
        await server.wait_closed()


async def test_a_row_without_a_recipient_fails_for_good() -> None:
    with pytest.raises(DeliveryError) as caught:
        await transport("smtp://127.0.0.1:1").send(notification("decider", recipient=None), None)
    assert caught.value.permanent


# --- the demo's mail sink -------------------------------------------------------------------


async def test_the_sink_keeps_each_mail_as_an_eml_file_and_reports_it(tmp_path: Path) -> None:
    arrived: asyncio.Queue[ReceivedMail] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def on_mail(mail: ReceivedMail) -> None:
        loop.call_soon_threadsafe(arrived.put_nowait, mail)

    sink = MailSink(tmp_path / "mail", on_mail=on_mail)
    await asyncio.to_thread(sink.start)
    try:
        assert re.fullmatch(r"smtp://127\.0\.0\.1:\d+", sink.url)
        await transport(sink.url).send(notification("decider"), None)
        async with asyncio.timeout(10):
            received = await arrived.get()
    finally:
        await asyncio.to_thread(sink.stop)

    assert received.recipients == ("contoso-admin@example.com",)
    assert received.summary() == (
        "mail to contoso-admin@example.com: [Lockbox] contoso: engineer-alice asks for access "
        "(decide by 2026-12-09 10:00 UTC)"
    )
    assert received.path is not None and received.path.parent == tmp_path / "mail"
    assert received.path.suffix == ".eml"
    saved = message_from_bytes(received.path.read_bytes(), policy=default_policy)
    assert saved["To"] == "contoso-admin@example.com"
    assert saved.get_body(("html",)) is not None


def test_the_printer_holds_lines_until_released() -> None:
    out = io.StringIO()
    printer = HeldPrinter(out)
    mail = ReceivedMail("a@example.org", ("b@example.org",), "Hello", b"", None)
    printer(mail)
    assert out.getvalue() == ""
    printer.release()
    printer(mail)
    assert out.getvalue() == "mail to b@example.org: Hello\n" * 2

"""A real SMTP server for tests, and a throwaway CA for its TLS.

    async with smtp_server() as smtp:                      # plain SMTP
        transport = MailTransport(smtp.url, mail_from=..., link_base=...)
        ...
        mail = await smtp.next_mail()                      # waits, never sleeps
        mail.message["Subject"], mail.text, mail.html, mail.recipients

    tls = make_tls_files(tmp_path)                         # CA + server cert
    async with smtp_server(tls=tls, credentials=("ann", "s3cret")) as smtp:
        smtp.url_with("ann", "s3cret")                     # STARTTLS required, AUTH required
        tls.ca_file                                        # LOCKBOX_SMTP_CA_FILE
    async with smtp_server(tls=tls, implicit_tls=True) as smtp:   # smtps://

The server is aiosmtpd (lockbox.notify.sink.MailSink) on a port of 127.0.0.1
the system picks, in its own thread; it also works for a `lockbox serve`
subprocess (pass `smtp.url` as LOCKBOX_SMTP_URL). The fixtures `smtp` (plain)
and `tls_files` (session-wide) are here too: import them into a test module
(`from tests.notify.smtp_support import smtp_fixture, tls_files_fixture  # noqa: F401`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lockbox.notify.sink import MailSink, ReceivedMail

WAIT_SECONDS = 10.0

# --- a throwaway CA -------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the CA's certificate (PEM): what a client trusts (LOCKBOX_SMTP_CA_FILE)
    cert_file: Path  # the server's certificate (PEM), for 127.0.0.1, ::1 and localhost
    key_file: Path  # the server's private key (PEM)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_tls_files(
    folder: Path, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
) -> TlsFiles:
    """A new CA and a server certificate it signed for `hosts`, as PEM files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lockbox test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- the server -----------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """One received mail: the envelope, and the message parsed."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def _part(self, subtype: str) -> str:
        part = self.message.get_body((subtype,))
        assert part is not None, f"the mail has no text/{subtype} part"
        return cast(str, part.get_content())


def parse_mail(raw: bytes, sender: str = "", recipients: tuple[str, ...] = ()) -> Mail:
    message = message_from_bytes(raw, policy=default_policy)
    return Mail(sender=sender, recipients=recipients, raw=raw, message=message)


class SmtpTestServer:
    """A running aiosmtpd server; `next_mail()` waits for what it receives."""

    def __init__(self, sink: MailSink, queue: asyncio.Queue[Mail]) -> None:
        self.sink = sink
        self._queue = queue

    @property
    def host(self) -> str:
        return self.sink.host

    @property
    def port(self) -> int:
        return self.sink.port

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:PORT` (or `smtps://…` for implicit TLS)."""
        return self.sink.url

    def url_with(self, user: str, password: str) -> str:
        """The URL with credentials, percent-encoded."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"

    @property
    def mails(self) -> list[Mail]:
        """Every mail received so far."""
        return [_mail(m) for m in self.sink.received]

    async def next_mail(self, timeout: float = WAIT_SECONDS) -> Mail:
        """The next mail not yet taken, waiting up to `timeout` seconds for it."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    def assert_no_mail(self) -> None:
        assert self._queue.empty(), [m.subject for m in self.sink.received]


def _mail(received: ReceivedMail) -> Mail:
    return parse_mail(received.raw, received.sender, received.recipients)


def _authenticator(user: str, password: str) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


@asynccontextmanager
async def smtp_server(
    *,
    tls: TlsFiles | None = None,
    implicit_tls: bool = False,
    credentials: tuple[str, str] | None = None,
    require_starttls: bool | None = None,
    folder: Path | None = None,
) -> AsyncIterator[SmtpTestServer]:
    """An SMTP server on 127.0.0.1 for the duration of the block.

    `tls`: offer STARTTLS with that certificate (required when `credentials`
    are, unless `require_starttls=False`); with `implicit_tls`, speak TLS
    from the first byte instead (smtps). `credentials`: AUTH is required and
    only this user and password pass. `folder`: also keep each mail as .eml.
    """
    options: dict[str, Any] = {}
    if implicit_tls:
        assert tls is not None, "implicit TLS needs tls=make_tls_files(...)"
        options["ssl_context"] = tls.server_context()
        # aiosmtpd only counts STARTTLS as TLS; this connection is TLS from the start.
        options["auth_require_tls"] = False
    elif tls is not None:
        options["tls_context"] = tls.server_context()
        options["require_starttls"] = (
            credentials is not None if require_starttls is None else require_starttls
        )
    if credentials is not None:
        options["auth_required"] = True
        options["authenticator"] = _authenticator(*credentials)
        if tls is None:
            options["auth_require_tls"] = False  # a server that takes passwords in clear
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Mail] = asyncio.Queue()

    def arrived(received: ReceivedMail) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, _mail(received))

    sink = MailSink(folder, on_mail=arrived, controller_options=options)
    await asyncio.to_thread(sink.start)
    try:
        yield SmtpTestServer(sink, queue)
    finally:
        await asyncio.to_thread(sink.stop)


# --- fixtures (import them into the test module that uses them) -----------------------


@pytest.fixture(name="smtp")
async def smtp_fixture() -> AsyncIterator[SmtpTestServer]:
    """A plain SMTP server (no TLS, no AUTH) for one test."""
    async with smtp_server() as server:
        yield server


@pytest.fixture(name="tls_files", scope="session")
def tls_files_fixture(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls"))

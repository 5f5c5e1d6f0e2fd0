"""A local SMTP server that keeps what it receives: the mailbox of `lockbox demo`
(and, with TLS and AUTH options, the mail server of the tests).

It is aiosmtpd's threaded Controller on a port of 127.0.0.1 that the system
picks, so it never collides with anything. Each mail is handed to `on_mail`
and, when a folder is given, written there as a `.eml` file.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    raw: bytes  # the message as received, headers and body
    path: Path | None  # where it was written, if the sink has a folder

    def summary(self) -> str:
        return f"mail to {', '.join(self.recipients)}: {self.subject}"


class LoopbackController(Controller):
    """aiosmtpd's Controller listening on `port`, by default a free one that
    the system picks."""

    def __init__(
        self, handler: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        options.setdefault("server_hostname", "localhost")  # no getfqdn() lookup
        super().__init__(handler, hostname=host, port=port, **options)

    def _create_server(self) -> Awaitable[Any]:
        async def listen() -> Any:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return listen()


class MailSink:
    """Receives mail on 127.0.0.1 until stopped; `url` is its LOCKBOX_SMTP_URL.

    `controller_options` go to aiosmtpd's Controller and SMTP (tls_context,
    require_starttls, auth_required, authenticator, ssl_context for implicit
    TLS, …). `on_mail` runs on the sink's own thread, once per mail.
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        on_mail: Callable[[ReceivedMail], None] | None = None,
        host: str = "127.0.0.1",
        controller_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.folder = folder
        self.on_mail = on_mail
        self.received: list[ReceivedMail] = []
        options = dict(controller_options or {})
        self.implicit_tls = options.get("ssl_context") is not None
        self._controller = LoopbackController(_Handler(self), host=host, **options)
        self._count = 0
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{host}:{self.port}"

    def start(self) -> MailSink:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _receive(self, envelope: Envelope) -> None:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        recipients = tuple(envelope.rcpt_tos)
        with self._lock:
            self._count += 1
            count = self._count
        path = None
        if self.folder is not None:
            name = re.sub(r"[^A-Za-z0-9@._-]", "_", recipients[0] if recipients else "nobody")
            path = self.folder / f"{count:04d}-{name[:80]}.eml"
            path.write_bytes(raw)
        mail = ReceivedMail(
            sender=envelope.mail_from or "",
            recipients=recipients,
            subject=str(headers.get("Subject", "")),
            raw=raw,
            path=path,
        )
        with self._lock:
            self.received.append(mail)
        if self.on_mail is not None:
            self.on_mail(mail)


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            self.sink._receive(envelope)  # a small local write, on the sink's own thread
        except Exception:
            log.exception("the mail sink could not keep a mail")
            return "451 Requested action aborted: local error in processing"
        return "250 Message accepted for delivery"


class HeldPrinter:
    """Prints one line per mail to `stream`, holding back those that arrive
    before `release()` (so that the demo's banner comes first)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._held: list[str] | None = []
        self._lock = threading.Lock()

    def __call__(self, mail: ReceivedMail) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(mail.summary())
                return
            self._print(mail.summary())

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held or [], None
            for line in held:
                self._print(line)

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)

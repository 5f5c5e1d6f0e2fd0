"""The `lockbox` command: the parser, which routes each verb to one function,
and `main`, which turns every expected failure into one line on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from lockbox.cli import admin, audit, keys, server
from lockbox.cli.common import CliError, Command
from lockbox.domain.errors import LockboxError
from lockbox.domain.policy import Role
from lockbox.observability import logs
from lockbox.settings import Settings


def main(argv: list[str] | None = None) -> None:
    try:  # LOCKBOX_LOG_LEVEL, LOCKBOX_LOG_FORMAT (text or json)
        logs.configure_from_env()
    except ValueError as exc:
        fail(str(exc), 2)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env().with_overrides(
            database_url=getattr(args, "database_url", None),
            broker_url=getattr(args, "broker_url", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
        args.run(args, settings)
    except CliError as exc:
        fail(str(exc), exc.exit_code)
    except LockboxError as exc:
        fail(exc.message, 1)
    except ValueError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def fail(message: str, code: int) -> NoReturn:
    print(f"lockbox: error: {message}", file=sys.stderr)
    raise SystemExit(code)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')", 2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lockbox", description="Customer Lockbox: gated, streamed, audited support access."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(sub, "serve", "apply migrations, then serve HTTP and WebSocket", server.serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    _database_flag(serve)
    _broker_flag(serve)
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")

    migrate = _command(sub, "migrate", "apply pending migrations and exit", server.migrate)
    _database_flag(migrate)

    seed = _command(
        sub, "seed-demo", "create the demo world and print its ids and tokens", server.seed_demo
    )
    _database_flag(seed)
    seed.add_argument("--json", action="store_true", help="print one JSON object")

    demo = _command(sub, "demo", "the one-command tour on a fresh demo database", server.demo)
    demo.add_argument("--port", type=int)
    demo.add_argument("--tick", type=float, default=4.0, help="seconds between engineer actions")

    _add_admin(sub)

    audit_verbs = _group(sub, "audit", "audit log tools", "VERB")
    verify = _command(
        audit_verbs,
        "verify",
        "check every tenant's audit hash chain (as HMACs under LOCKBOX_AUDIT_KEY when set) "
        "and that each request row says what its chain says",
        audit.verify,
    )
    _database_flag(verify)
    verify.add_argument("--tenant", help="only this tenant (id or name)")
    verify.add_argument(
        "--expect-head",
        metavar="FILE",
        help="heads as 'audit head --json' wrote them: each chain must still reach its "
        "recorded head with the same hash",
    )
    verify.add_argument(
        "--public-key",
        metavar="PATH",
        help="check every decision's signature with this Ed25519 public key (PEM, as "
        "GET /.well-known/lockbox-signing-key serves it)",
    )
    export = _command(
        audit_verbs,
        "export",
        "stream every audit event in chain order to stdout, each with the fields its "
        "hash covers (re-verifiable offline: docs/verify-export.md)",
        audit.export,
    )
    _database_flag(export)
    export.add_argument("--tenant", help="only this tenant (id or name)")
    export.add_argument(
        "--since", metavar="T", help="events at or after T (ISO 8601; UTC if naive)"
    )
    export.add_argument("--until", metavar="T", help="events before T (ISO 8601; UTC if naive)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    report = _command(
        audit_verbs,
        "report",
        "print one request's evidence (decisions, activity, audit events, problems) as JSON",
        audit.report,
    )
    _database_flag(report)
    report.add_argument("request_id", metavar="REQUEST-ID")
    report.add_argument(
        "--public-key", metavar="PATH", help="check signatures with this public key (PEM)"
    )
    head = _command(
        audit_verbs,
        "head",
        "print each tenant's current audit head (tenant id, name, seq, hash) to keep elsewhere",
        audit.head,
    )
    _database_flag(head)
    head.add_argument("--tenant", help="only this tenant (id or name)")
    head.add_argument("--json", action="store_true", help="print one JSON list")

    key_verbs = _group(sub, "keys", "the Ed25519 key that signs decisions", "VERB")
    generate = _command(
        key_verbs,
        "generate",
        "write a new Ed25519 private key (PEM, mode 0600) for LOCKBOX_SIGNING_KEY",
        keys.generate,
    )
    generate.add_argument("path", metavar="PATH")

    _command(sub, "export-schema", "print the GraphQL schema (SDL)", server.export_schema)
    return parser


def _add_admin(sub: Any) -> None:
    objects = _group(sub, "admin", "provision tenants, principals, tickets, tokens", "OBJECT")

    tenant = _group(objects, "tenant", "tenants and their resource roots", "VERB")
    p = _admin_command(tenant, "create", "create a tenant", admin.tenant_create)
    p.add_argument("name")
    p.add_argument("--root", action="append", required=True, help="resource root (repeatable)")
    p.add_argument("--lockbox-disabled", action="store_true", help="auto-approve its requests")
    _admin_command(tenant, "list", "list tenants", admin.tenant_list)

    principal = _group(objects, "principal", "people and services that call Lockbox", "VERB")
    p = _admin_command(principal, "create", "create a principal", admin.principal_create)
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--tenant", help="tenant id or name (tenant-side roles)")
    p.add_argument("--scope", action="append", default=[], help="approver scope (repeatable)")
    p.add_argument("--email", metavar="ADDR", help="where its notification mails go")
    p = _admin_command(
        principal, "update", "change a principal's e-mail address", admin.principal_update
    )
    p.add_argument("principal", help="id or name")
    address = p.add_mutually_exclusive_group(required=True)
    address.add_argument("--email", metavar="ADDR", help="the new address")
    address.add_argument("--no-email", action="store_true", help="remove the address")
    p = _admin_command(principal, "list", "list principals", admin.principal_list)
    p.add_argument("--tenant")
    p = _admin_command(
        principal,
        "disable",
        "disable a principal: its tokens stop working at once",
        admin.principal_disable,
    )
    p.add_argument("principal", help="id or name")
    p = _admin_command(
        principal, "enable", "enable a disabled principal again", admin.principal_enable
    )
    p.add_argument("principal", help="id or name")

    ticket = _group(objects, "ticket", "support tickets", "VERB")
    p = _admin_command(ticket, "create", "open a support ticket for a tenant", admin.ticket_create)
    p.add_argument("--tenant", required=True)
    p.add_argument("title")
    p = _admin_command(ticket, "close", "close a ticket", admin.ticket_close)
    p.add_argument("ticket", help="ticket id")
    p = _admin_command(ticket, "reopen", "reopen a ticket", admin.ticket_reopen)
    p.add_argument("ticket", help="ticket id")
    p = _admin_command(ticket, "list", "list tickets", admin.ticket_list)
    p.add_argument("--tenant")

    token = _group(objects, "token", "API tokens", "VERB")
    p = _admin_command(
        token, "issue", "issue a token (the secret is printed once)", admin.token_issue
    )
    p.add_argument("principal", help="id or name")
    p.add_argument("--label", default="")
    p = _admin_command(
        token,
        "revoke",
        "revoke a token: it stops working at once, open sockets included",
        admin.token_revoke,
    )
    p.add_argument("token", help="token id")
    p = _admin_command(token, "list", "list a principal's tokens", admin.token_list)
    p.add_argument("principal", help="id or name")


def _group(sub: Any, name: str, help_text: str, metavar: str) -> Any:
    """A command that only holds sub-commands; naming none is a usage error."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=metavar.lower(), required=True, metavar=metavar)


def _command(sub: Any, name: str, help_text: str, run: Command) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    parser.set_defaults(run=run)
    return parser


def _admin_command(sub: Any, name: str, help_text: str, run: Command) -> argparse.ArgumentParser:
    parser = _command(sub, name, help_text, run)
    _database_flag(parser)
    _broker_flag(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="default: $LOCKBOX_DATABASE_URL or sqlite://lockbox.db"
    )


def _broker_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker-url", help="default: $LOCKBOX_BROKER_URL or memory://")

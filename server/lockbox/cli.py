"""The `lockbox` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from lockbox.domain.errors import LockboxError
from lockbox.domain.policy import Role
from lockbox.realtime.broker import broker_from_url
from lockbox.services import admin
from lockbox.services.deps import Deps
from lockbox.settings import Settings
from lockbox.store import config as db


class CliError(Exception):
    """A failure worth one clear line and a non-zero exit, not a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def redact(url: str) -> str:
    """A URL fit for messages: the password replaced."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _describe_db_failure(url: str, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot use the database at {redact(url)}: {reason}"


async def _with_database(url: str, work: Callable[[], Awaitable[Any]], *, migrate: bool) -> Any:
    try:
        if migrate:
            await db.migrate(url)
        async with db.database(url):
            return await work()
    except (LockboxError, CliError):
        raise
    except db.DatabaseUrlError as exc:
        raise CliError(str(exc), 2) from None
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise CliError(_describe_db_failure(url, exc)) from None
    except Exception as exc:
        # Driver errors (asyncpg, sqlite3, tortoise) all mean the same to a user.
        if type(exc).__module__.split(".")[0] in ("asyncpg", "sqlite3", "tortoise", "aiosqlite"):
            raise CliError(_describe_db_failure(url, exc)) from None
        raise


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=None if as_json else 2) if as_json else text)


# --- serve / migrate / seed / demo ----------------------------------------------


def _exit_zero_on_sigterm() -> None:
    """uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with
    the previous handler in place; with the default one the process would die
    with status 143 after a clean shutdown. Make that re-raise a normal exit."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from lockbox.app import UVICORN_OPTIONS, create_app

    _check_broker_url(settings.broker_url)
    _exit_zero_on_sigterm()
    if not args.no_migrate:
        asyncio.run(_with_database(settings.database_url, _nothing, migrate=True))
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", **UVICORN_OPTIONS)


async def _nothing() -> None:
    return None


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    asyncio.run(_with_database(settings.database_url, _nothing, migrate=True))
    print(f"database at {redact(settings.database_url)} is up to date")


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    from lockbox.services import demo

    world = asyncio.run(
        _with_database(settings.database_url, lambda: demo.seed(Deps()), migrate=True)
    )
    print(json.dumps(world) if args.json else json.dumps(world, indent=2))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    _exit_zero_on_sigterm()
    asyncio.run(_demo(args, settings))


async def _demo(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from lockbox.app import UVICORN_OPTIONS, create_app
    from lockbox.demo import simulate
    from lockbox.services import demo as demo_world

    folder = Path(tempfile.mkdtemp(prefix="lockbox-demo-"))
    url = f"sqlite://{folder / 'demo.db'}"
    settings = settings.with_overrides(database_url=url, broker_url="memory://")
    world = await _with_database(url, lambda: demo_world.seed(Deps()), migrate=True)
    app = create_app(settings, workers=[lambda deps: simulate(deps, world, tick_seconds=args.tick)])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", **UVICORN_OPTIONS
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            raise CliError(f"could not start the server on {settings.host}:{settings.port}")
        await asyncio.sleep(0.05)
    base = f"http://{settings.host}:{settings.port}"
    print(_demo_banner(base, url, world), flush=True)
    try:
        await serving
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _demo_banner(base: str, url: str, world: dict[str, Any]) -> str:
    tokens = "\n".join(f"  {name:24} {info['token']}" for name, info in world["principals"].items())
    return (
        f"Lockbox demo is running.\n\n"
        f"  GraphiQL:   {base}/graphql\n"
        f"  Dashboard:  {base}/dashboard\n"
        f"  Database:   {url}\n\n"
        f"Tokens (send as 'Authorization: Bearer <token>'):\n{tokens}\n\n"
        f"engineer-alice is at work: her northwind requests are approved at once\n"
        f"(lockbox is off there); approve her contoso request to watch it move.\n"
        f"Press Ctrl+C to stop."
    )


# --- admin -----------------------------------------------------------------------


def _admin_deps(settings: Settings) -> Deps:
    _check_broker_url(settings.broker_url)
    return Deps(broker=broker_from_url(settings.broker_url))


def _run_admin(settings: Settings, work: Callable[[Deps], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        deps = _admin_deps(settings)
        try:
            return await work(deps)
        finally:
            await deps.broker.close()

    return asyncio.run(_with_database(settings.database_url, run, migrate=False))


def _tenant_json(t: Any) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "name": t.name,
        "lockboxEnabled": t.lockbox_enabled,
        "resourceRoots": list(t.resource_roots),
    }


def _principal_json(p: Any) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "role": str(p.role),
        "tenantId": None if p.tenant_id is None else str(p.tenant_id),
        "scopes": list(p.scopes),
        "email": p.email,
        "disabled": p.disabled_at is not None,
    }


def _ticket_json(t: Any) -> dict[str, Any]:
    return {"id": str(t.id), "tenantId": str(t.tenant_id), "title": t.title, "open": t.is_open}


def _token_json(t: Any) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "principalId": str(t.principal_id),
        "label": t.label,
        "revoked": t.revoked_at is not None,
    }


def cmd_admin(args: argparse.Namespace, settings: Settings) -> None:
    from lockbox.store import queries as store

    action = f"{args.object} {args.verb}"

    async def work(deps: Deps) -> tuple[Any, str]:
        if action == "tenant create":
            t = await admin.create_tenant(args.name, args.root, not args.lockbox_disabled)
            return _tenant_json(t), f"created tenant {t.name} ({t.id})"
        if action == "tenant list":
            rows = [_tenant_json(t) for t in await store.list_tenants()]
            return rows, "\n".join(f"{t['id']}  {t['name']}  {t['resourceRoots']}" for t in rows)
        if action == "principal create":
            p = await admin.create_principal(
                deps,
                args.name,
                Role(args.role),
                tenant_ref=args.tenant,
                scopes=args.scope,
                email=args.email,
            )
            return _principal_json(p), f"created {p.role} {p.name} ({p.id})"
        if action == "principal list":
            tenant = None if args.tenant is None else (await admin.find_tenant(args.tenant)).id
            rows = [_principal_json(p) for p in await store.list_principals(tenant)]
            return rows, "\n".join(
                f"{p['id']}  {p['name']}  {p['role']}{'  (disabled)' if p['disabled'] else ''}"
                for p in rows
            )
        if action == "principal disable":
            p = await admin.disable_principal(deps, args.principal)
            return _principal_json(p), f"disabled {p.name}"
        if action == "principal enable":
            p = await admin.enable_principal(deps, args.principal)
            return _principal_json(p), f"enabled {p.name}"
        if action == "ticket create":
            ticket = await admin.create_ticket(args.tenant, args.title)
            return _ticket_json(ticket), f"opened ticket {ticket.id}"
        if action in ("ticket close", "ticket reopen"):
            ticket = await admin.set_ticket_open(args.ticket, args.verb == "reopen")
            state = "open" if ticket.is_open else "closed"
            return _ticket_json(ticket), f"ticket {ticket.id} is {state}"
        if action == "ticket list":
            tenant = None if args.tenant is None else (await admin.find_tenant(args.tenant)).id
            rows = [_ticket_json(t) for t in await store.list_tickets(tenant)]
            return rows, "\n".join(f"{t['id']}  {t['title']}" for t in rows)
        if action == "token issue":
            issued = await admin.issue_token(deps, args.principal, args.label)
            data = {**_token_json(issued.token), "token": issued.secret}
            return data, f"{issued.secret}\n(token id {issued.token.id}; shown once, store it now)"
        if action == "token revoke":
            token = await admin.revoke_token(deps, args.token)
            return _token_json(token), f"revoked token {token.id}"
        if action == "token list":
            principal = await admin.find_principal(args.principal)
            rows = [_token_json(t) for t in await store.list_tokens(principal.id)]
            return rows, "\n".join(
                f"{t['id']}  {t['label']}{'  (revoked)' if t['revoked'] else ''}" for t in rows
            )
        raise CliError(f"unknown admin command: {action}", 2)

    data, text = _run_admin(settings, work)
    _print(data, args.json, text)


# --- audit -----------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> None:
    from lockbox.services import audit
    from lockbox.store import queries as store

    async def work() -> list[audit.TenantVerdict]:
        if args.tenant:
            tenants = [await admin.find_tenant(args.tenant)]
        else:
            tenants = await store.list_tenants()
        return [await audit.verify_tenant(t) for t in tenants]

    verdicts = asyncio.run(_with_database(settings.database_url, work, migrate=False))
    broken = [v for v in verdicts if v.broken is not None]
    for verdict in verdicts:
        if verdict.broken is None:
            print(f"ok      {verdict.tenant.name}: {verdict.events} events, chain intact")
        else:
            where = (
                f"event #{verdict.broken.seq} (id {verdict.broken.event_id})"
                if verdict.broken.event_id
                else "the end of the chain"
            )
            print(f"BROKEN  {verdict.tenant.name}: at {where}: {verdict.broken.reason}")
    total = sum(v.events for v in verdicts)
    print(f"{len(verdicts)} tenant(s), {total} events, {len(broken)} broken chain(s)")
    if broken:
        raise SystemExit(1)


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> None:
    from lockbox.api.schema import build_schema

    print(build_schema().as_str())


# --- parser ----------------------------------------------------------------------


def _check_broker_url(url: str) -> None:
    if not url.startswith(("memory://", "redis://", "rediss://")):
        raise CliError(f"unsupported broker URL {redact(url)!r}: use memory:// or redis://", 2)


def _db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="default: $LOCKBOX_DATABASE_URL or sqlite://lockbox.db"
    )


def _broker_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker-url", help="default: $LOCKBOX_BROKER_URL or memory://")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')", 2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lockbox", description="Customer Lockbox: gated, streamed, audited support access."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="apply migrations, then serve HTTP and WebSocket")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    _db_flag(serve)
    _broker_flag(serve)
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply pending migrations and exit")
    _db_flag(migrate)
    migrate.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed-demo", help="create the demo world and print its ids and tokens")
    _db_flag(seed)
    seed.add_argument("--json", action="store_true", help="print one JSON object")
    seed.set_defaults(func=cmd_seed_demo)

    demo = sub.add_parser("demo", help="the one-command tour on a fresh demo database")
    demo.add_argument("--port", type=int)
    demo.add_argument("--tick", type=float, default=4.0, help="seconds between engineer actions")
    demo.set_defaults(func=cmd_demo)

    _build_admin(sub)

    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="verb", required=True, metavar="VERB")
    verify = audit_sub.add_parser("verify", help="check every tenant's audit hash chain")
    _db_flag(verify)
    verify.add_argument("--tenant", help="only this tenant (id or name)")
    verify.set_defaults(func=cmd_audit_verify)

    export = sub.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.set_defaults(func=cmd_export_schema)
    return parser


def _build_admin(sub: Any) -> None:
    admin_parser = sub.add_parser("admin", help="provision tenants, principals, tickets, tokens")
    objects = admin_parser.add_subparsers(dest="object", required=True, metavar="OBJECT")

    def verb(group: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help_text)
        _db_flag(p)
        _broker_flag(p)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=cmd_admin)
        return p

    tenant = objects.add_parser("tenant", help="tenants and their resource roots")
    tv = tenant.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verb(tv, "create", "create a tenant")
    p.add_argument("name")
    p.add_argument("--root", action="append", required=True, help="resource root (repeatable)")
    p.add_argument("--lockbox-disabled", action="store_true", help="auto-approve its requests")
    verb(tv, "list", "list tenants")

    principal = objects.add_parser("principal", help="people and services that call Lockbox")
    pv = principal.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verb(pv, "create", "create a principal")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--tenant", help="tenant id or name (tenant-side roles)")
    p.add_argument("--scope", action="append", default=[], help="approver scope (repeatable)")
    p.add_argument("--email")
    p = verb(pv, "list", "list principals")
    p.add_argument("--tenant")
    p = verb(pv, "disable", "disable a principal: its tokens stop working at once")
    p.add_argument("principal", help="id or name")
    p = verb(pv, "enable", "enable a disabled principal again")
    p.add_argument("principal", help="id or name")

    ticket = objects.add_parser("ticket", help="support tickets")
    kv = ticket.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verb(kv, "create", "open a support ticket for a tenant")
    p.add_argument("--tenant", required=True)
    p.add_argument("title")
    for name in ("close", "reopen"):
        p = verb(kv, name, f"{name} a ticket")
        p.add_argument("ticket", help="ticket id")
    p = verb(kv, "list", "list tickets")
    p.add_argument("--tenant")

    token = objects.add_parser("token", help="API tokens")
    tk = token.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verb(tk, "issue", "issue a token (the secret is printed once)")
    p.add_argument("principal", help="id or name")
    p.add_argument("--label", default="")
    p = verb(tk, "revoke", "revoke a token: it stops working at once, open sockets included")
    p.add_argument("token", help="token id")
    p = verb(tk, "list", "list a principal's tokens")
    p.add_argument("principal", help="id or name")


def fail(message: str, code: int) -> NoReturn:
    print(f"lockbox: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("LOCKBOX_LOG_LEVEL", "WARNING").upper())
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env().with_overrides(
            database_url=getattr(args, "database_url", None),
            broker_url=getattr(args, "broker_url", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
        args.func(args, settings)
    except CliError as exc:
        fail(str(exc), exc.exit_code)
    except LockboxError as exc:
        fail(exc.message, 1)
    except ValueError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        raise SystemExit(130) from None

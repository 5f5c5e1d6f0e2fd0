"""Commands that set up or run a server: serve, migrate, seed-demo, demo, export-schema.

uvicorn, the ASGI app and the GraphQL schema are imported inside the commands
that need them, so that the admin and audit commands start quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from lockbox.cli.common import CliError, check_broker_url, redact, with_database
from lockbox.services import demo_world
from lockbox.services.deps import Deps
from lockbox.settings import Settings


def serve(args: argparse.Namespace, settings: Settings) -> None:
    """Apply migrations (unless --no-migrate), then serve HTTP and WebSocket."""
    import uvicorn

    from lockbox.app import create_app, uvicorn_options

    check_broker_url(settings.broker_url)
    _exit_zero_on_sigterm()
    if not args.no_migrate:
        asyncio.run(with_database(settings.database_url, _nothing, migrate=True))
    app = create_app(settings)
    if not settings.smtp_url:
        # Logged, so that it is a JSON line too with LOCKBOX_LOG_FORMAT=json.
        logging.getLogger("lockbox").warning("LOCKBOX_SMTP_URL is not set: no mail will be sent")
    settle_heap()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        # Through the handler `lockbox` installed (LOCKBOX_LOG_FORMAT), not uvicorn's own.
        log_config=None,
        **uvicorn_options(settings),
    )


def migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Apply pending migrations and say so."""
    asyncio.run(with_database(settings.database_url, _nothing, migrate=True))
    print(f"database at {redact(settings.database_url)} is up to date")


def seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Create the demo world and print its ids and tokens."""
    world = asyncio.run(
        with_database(
            settings.database_url,
            lambda: demo_world.seed(Deps(audit_key=settings.audit_key_bytes)),
            migrate=True,
        )
    )
    print(json.dumps(world) if args.json else json.dumps(world, indent=2))


def demo(args: argparse.Namespace, settings: Settings) -> None:
    """The tour: a fresh demo database, the server, and engineer-alice at work."""
    _exit_zero_on_sigterm()
    asyncio.run(_demo(args, settings))


def export_schema(args: argparse.Namespace, settings: Settings) -> None:
    """Print the GraphQL schema (SDL)."""
    from lockbox.api.schema import build_schema

    print(build_schema().as_str())


def settle_heap() -> None:
    """Exempt what start-up built (modules, the schema, the ORM's models) from
    the cyclic garbage collector. Each full collection walked all of it: 35 to
    75 ms with the event loop stopped, every in-flight call waiting, several
    times a minute under load."""
    gc.collect()
    gc.freeze()


async def _nothing() -> None:
    return None


def _exit_zero_on_sigterm() -> None:
    """uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with
    the previous handler in place; with the default one the process would die
    with status 143 after a clean shutdown. Make that re-raise a normal exit."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


async def _demo(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from lockbox.app import create_app, uvicorn_options
    from lockbox.notify.sink import HeldPrinter, MailSink
    from lockbox.services.demo_engineer import simulate

    folder = Path(tempfile.mkdtemp(prefix="lockbox-demo-"))
    url = f"sqlite://{folder / 'demo.db'}"
    # The demo's own mail server: one line per mail here, each mail kept as .eml.
    printer = HeldPrinter()
    sink = MailSink(folder / "mail", on_mail=printer)
    await asyncio.to_thread(sink.start)
    try:
        settings = settings.with_overrides(
            database_url=url, broker_url="memory://", smtp_url=sink.url
        )
        world = await with_database(
            url,
            lambda: demo_world.seed_tour(Deps(audit_key=settings.audit_key_bytes)),
            migrate=True,
        )
        app = create_app(
            settings, workers=[lambda deps: simulate(deps, world, tick_seconds=args.tick)]
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                log_config=None,  # through the handler `lockbox` installed
                **uvicorn_options(settings),
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                raise CliError(f"could not start the server on {settings.host}:{settings.port}")
            await asyncio.sleep(0.05)
        base = f"http://{settings.host}:{settings.port}"
        print(_demo_banner(base, url, world, folder / "mail"), flush=True)
        printer.release()  # mails that came before the banner, then each as it comes
        await serving
    finally:
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _demo_banner(base: str, url: str, world: dict[str, Any], mail_folder: Path) -> str:
    tokens = "\n".join(f"  {name:24} {info['token']}" for name, info in world["principals"].items())
    return (
        f"Lockbox demo is running.\n\n"
        f"  GraphiQL:   {base}/graphql\n"
        f"  Dashboard:  {base}/dashboard\n"
        f"  Database:   {url}\n"
        f"  Mail:       {mail_folder}  (one .eml per mail; a line here for each)\n\n"
        f"Tokens (send as 'Authorization: Bearer <token>'):\n{tokens}\n\n"
        f"engineer-alice is at work: her northwind requests are approved at once\n"
        f"(lockbox is off there); approve her contoso request to watch it move.\n"
        f"Her fabrikam request needs two approvals (fabrikam-admin and\n"
        f"fabrikam-approver): fabrikam requires 2.\n"
        f"Press Ctrl+C to stop."
    )

"""What every command shares: clean failures, the database around the work, output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from lockbox.domain.errors import LockboxError
from lockbox.settings import Settings
from lockbox.store import config as db

T = TypeVar("T")

Command = Callable[[argparse.Namespace, Settings], None]
"""What a sub-parser routes to: the parsed flags, and settings with them applied."""

# Driver errors (asyncpg, sqlite3, tortoise) all mean the same to a user.
_DRIVER_PACKAGES = ("asyncpg", "sqlite3", "tortoise", "aiosqlite")


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


def check_broker_url(url: str) -> None:
    """Refuse a broker URL before anything has been done with it."""
    if not url.startswith(("memory://", "redis://", "rediss://")):
        raise CliError(f"unsupported broker URL {redact(url)!r}: use memory:// or redis://", 2)


async def with_database(url: str, work: Callable[[], Awaitable[T]], *, migrate: bool) -> T:
    """Run `work` with the database open (migrated first if asked), turning
    whatever the driver raises into one CliError that names the database."""
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
        if type(exc).__module__.split(".")[0] in _DRIVER_PACKAGES:
            raise CliError(_describe_db_failure(url, exc)) from None
        raise


def _describe_db_failure(url: str, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot use the database at {redact(url)}: {reason}"


def print_result(data: Any, as_json: bool, text: str) -> None:
    """`--json` prints `data` on one line, for scripts; otherwise `text`, for people."""
    print(json.dumps(data) if as_json else text)

"""Helpers for end-to-end tests of the `lockbox` console script.

Everything here drives real things: the installed `lockbox` script as a
subprocess, the test's real database (SQLite file or PostgreSQL) opened
directly for inspection and tampering, and real servers on free ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import httpx

LOCKBOX = Path(sys.executable).parent / "lockbox"

# The demo world of the contract (section 1).
DEMO_TENANTS = ("contoso", "fabrikam", "northwind")
DEMO_PRINCIPALS = (
    "contoso-admin",
    "contoso-approver-prod",
    "contoso-approver-dev",
    "contoso-auditor",
    "fabrikam-admin",
    "fabrikam-approver",
    "northwind-admin",
    "engineer-alice",
    "engineer-bob",
    "support-manager",
    "operator-admin",
)
DEMO_TICKETS = ("contoso-ticket", "fabrikam-ticket", "northwind-ticket")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any LOCKBOX_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKBOX_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.describe()
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"lockbox {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )

    def ok(self) -> Result:
        assert self.returncode == 0, self.describe()
        return self


class Lockbox:
    """Runs the installed `lockbox` script in a scratch directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        completed = subprocess.run(
            [str(LOCKBOX), *args],
            cwd=self.cwd,
            env=env if env is not None else clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(tuple(args), completed.returncode, completed.stdout, completed.stderr)

    async def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> Result:
        return await asyncio.to_thread(self.run, *args, env=env, timeout=timeout)


def assert_clean_failure(result: Result, *fragments: str) -> str:
    """A non-zero exit, nothing on stdout, no traceback, and exactly one line
    on stderr, `lockbox: error: …`, containing every fragment. Returns it."""
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr + result.stdout, result.describe()
    assert result.stdout == "", result.describe()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.describe()
    error = lines[0]
    assert error.startswith("lockbox: error: "), result.describe()
    for fragment in fragments:
        assert fragment in error, f"{fragment!r} not in {error!r}"
    return error


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sqlite_fetch(path: str, query: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
    if not Path(path).exists():
        raise FileNotFoundError(path)  # sqlite3 would quietly create it
    with closing(sqlite3.connect(path, timeout=10)) as connection:
        return [tuple(row) for row in connection.execute(query, args).fetchall()]


def _sqlite_execute(path: str, statements: Sequence[str]) -> None:
    with closing(sqlite3.connect(path, timeout=10)) as connection, connection:
        for statement in statements:
            connection.execute(statement)


class Sql:
    """Direct access to a test database, bypassing Lockbox entirely.

    Queries use PostgreSQL placeholders ($1, $2…); they are rewritten for SQLite.
    """

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.sqlite_path = (
            database_url.removeprefix("sqlite://") if database_url.startswith("sqlite://") else None
        )

    async def _postgres(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))

    async def fetch(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            return _sqlite_fetch(self.sqlite_path, re.sub(r"\$\d+", "?", query), args)
        connection = await self._postgres()
        try:
            return [tuple(record) for record in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    async def execute(self, *statements: str) -> None:
        """Run statements (no parameters) in one transaction."""
        if self.sqlite_path is not None:
            _sqlite_execute(self.sqlite_path, statements)
            return
        connection = await self._postgres()
        try:
            async with connection.transaction():
                for statement in statements:
                    await connection.execute(statement)
        finally:
            await connection.close()

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        assert len(rows) == 1, rows
        return rows[0][0]

    async def tables(self) -> set[str]:
        """The tables in the database (none when the SQLite file does not exist)."""
        if self.sqlite_path is not None:
            try:
                rows = _sqlite_fetch(
                    self.sqlite_path, "SELECT name FROM sqlite_master WHERE type = 'table'", ()
                )
            except FileNotFoundError:
                return set()
        else:
            rows = await self.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        return {str(row[0]) for row in rows}


class ServerProcess:
    """`lockbox serve`/`lockbox demo` as a real child process on a free port.

    Output goes to files (so a chatty server can never block on a full pipe).
    """

    def __init__(
        self, folder: Path, args: Sequence[str], port: int, env: dict[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.args = list(args)
        self.port = port
        self.env = env or {}  # LOCKBOX_* settings for this server (others are cleared)
        self.base_url = f"http://127.0.0.1:{port}"
        self.stdout_path = folder / f"server-{port}.out"
        self.stderr_path = folder / f"server-{port}.err"
        self.process: subprocess.Popen[str] | None = None
        self._files: list[TextIO] = []

    def start(self) -> ServerProcess:
        out = self.stdout_path.open("w")
        err = self.stderr_path.open("w")
        self._files = [out, err]
        # TMPDIR keeps `lockbox demo`'s scratch database inside the test's folder.
        env = clean_env(TMPDIR=str(self.folder), PYTHONUNBUFFERED="1", **self.env)
        self.process = subprocess.Popen(
            [str(LOCKBOX), *self.args],
            cwd=self.folder,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )
        return self

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def describe(self) -> str:
        code = None if self.process is None else self.process.poll()
        return f"lockbox {' '.join(self.args)} (exit {code})\n--- stderr\n{self.stderr}"

    def wait_healthy(self, timeout: float = 20) -> None:
        """Poll /healthz until it answers 200, the process dies, or time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                assert self.process.poll() is None, self.describe()
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server not healthy in time\n" + self.describe()
                time.sleep(0.05)

    def wait_for_output(self, text: str, timeout: float = 20) -> str:
        """Poll stdout until it contains `text`; returns all of stdout."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            out = self.stdout
            if text in out:
                return out
            assert self.process.poll() is None, self.describe()
            assert time.monotonic() < deadline, f"{text!r} not printed in time\n{out}"
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> int:
        """Send `sig` and wait for the exit code (fails if it does not stop in time)."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"did not stop within {timeout}s of {sig.name}\n" + self.describe()
            ) from None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for file in self._files:
            file.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Real processes for the scale-out tests: `lockbox serve`, `redis-server`, and
a private PostgreSQL cluster, each on a free loopback port.

Every wait here polls a condition against a deadline; every process started is
stopped by the code that started it (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LOCKBOX = Path(sys.executable).parent / "lockbox"
HOST = "127.0.0.1"
POLL_SECONDS = 0.05


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any LOCKBOX_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKBOX_")}
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGTERM, wait up to `timeout`, then SIGKILL. The exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=timeout)


def kill_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGKILL, and reap it."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait(timeout=timeout)


# --- lockbox serve ---------------------------------------------------------------


@dataclass
class ServerProcess:
    """One `lockbox serve` child process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/graphql"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    async def wait_healthy(self, timeout: float = 30) -> None:
        """Poll /healthz until it answers 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode} before it was healthy:\n"
                        f"{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.http_url}/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} not healthy after {timeout} s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(POLL_SECONDS)

    async def readyz(self, client: httpx.AsyncClient) -> int:
        """The /readyz status code (0 when the server does not answer)."""
        try:
            return (await client.get(f"{self.http_url}/readyz", timeout=5)).status_code
        except httpx.HTTPError:
            return 0

    async def wait_ready_status(self, expected: int, timeout: float) -> float:
        """Poll /readyz until it answers `expected`; the seconds it took."""
        started = time.monotonic()
        last = None
        async with httpx.AsyncClient() as client:
            while time.monotonic() - started < timeout:
                last = await self.readyz(client)
                if last == expected:
                    return time.monotonic() - started
                await asyncio.sleep(POLL_SECONDS)
        raise AssertionError(
            f"{self.name}: /readyz stayed {last}, not {expected}, for {timeout} s:\n"
            f"{self.log_tail()}"
        )

    async def terminate(self, timeout: float = 15) -> int:
        """Graceful stop (SIGTERM, SIGKILL after `timeout`); the exit status."""
        return await asyncio.to_thread(stop_process, self.proc, timeout)

    async def kill(self) -> int:
        return await asyncio.to_thread(kill_process, self.proc)

    async def wait_exit(self, timeout: float) -> int:
        """Wait (without signalling) for the process to end; its exit status."""
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout} s:\n{self.log_tail()}"
            ) from None


def spawn_server(
    name: str,
    log_dir: Path,
    *,
    database_url: str,
    broker_url: str,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    port = free_port()
    log_path = log_dir / f"{name}-{port}.log"
    command = [
        str(LOCKBOX),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--broker-url",
        broker_url,
        "--no-migrate",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=child_env(env), cwd=log_dir
        )
    return ServerProcess(name=name, port=port, proc=proc, log_path=log_path)


@contextlib.asynccontextmanager
async def lockbox_servers(
    count: int,
    log_dir: Path,
    *,
    database_url: str,
    broker_url: str,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> AsyncIterator[list[ServerProcess]]:
    """`count` servers on one database and broker, healthy; stopped on exit.

    The per-principal rate limit is off unless `env` sets it: these tests
    drive one principal hard on purpose and check consistency, not quotas.
    """
    env = {"LOCKBOX_RATE_LIMIT_PER_SECOND": "0", **(env or {})}
    servers: list[ServerProcess] = []
    try:
        for i in range(count):
            servers.append(
                spawn_server(
                    f"server-{'ABCDEFGH'[i]}",
                    log_dir,
                    database_url=database_url,
                    broker_url=broker_url,
                    env=env,
                )
            )
        await asyncio.gather(*(s.wait_healthy(timeout) for s in servers))
        yield servers
    finally:
        await asyncio.gather(*(s.terminate() for s in servers), return_exceptions=True)


def run_lockbox(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one `lockbox` command to completion (stdout and stderr captured)."""
    return subprocess.run(
        [str(LOCKBOX), *args],
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=timeout,
        check=False,
    )


# --- redis-server ----------------------------------------------------------------


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A private redis-server that a test may kill and restart on its port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.workdir / f"redis-{self.port}-{self.starts}.log"
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not redis_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{_tail(log)}")
            time.sleep(POLL_SECONDS)

    def kill(self) -> None:
        """SIGKILL: the abrupt outage (no goodbye to clients)."""
        if self.proc is not None:
            kill_process(self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# --- a private PostgreSQL cluster -------------------------------------------------


def postgres_version() -> str | None:
    """The newest installed PostgreSQL major version with pg_createcluster support."""
    if shutil.which("pg_createcluster") is None or shutil.which("pg_ctlcluster") is None:
        return None
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p.name for p in root.glob("*") if (p / "bin" / "postgres").exists()),
        key=lambda v: int(v) if v.isdigit() else 0,
    )
    return versions[-1] if versions else None


def _run(command: list[str], timeout: float = 60) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")


@dataclass
class PostgresCluster:
    """A throw-away cluster made with pg_createcluster (trust auth, loopback)."""

    version: str
    name: str
    port: int = field(default_factory=free_port)

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def create(self) -> None:
        _run(
            [
                "pg_createcluster",
                self.version,
                self.name,
                "--port",
                str(self.port),
                "--",
                "--auth=trust",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        _run(["pg_ctlcluster", self.version, self.name, "start"])

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, committed data stays."""
        _run(["pg_ctlcluster", self.version, self.name, "stop", "-m", "fast"])

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", self.version, self.name, "--stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )

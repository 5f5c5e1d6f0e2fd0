"""Processes and databases: start them fresh, pin them, always clean them up."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.measure import pin

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """The harness could not set up or run a scenario."""


def lockbox_script() -> str:
    candidate = BIN / "lockbox"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("lockbox")
    if found is None:
        raise BenchError("the `lockbox` console script is not installed (run `make` first)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def cpu_plan() -> tuple[list[set[int]], set[int]]:
    """CPUs for servers and for the load generator: separate when there are two or more."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning
        return [set()], set()
    if len(available) < 2:
        return [set()], set()
    client = {available[-1]}
    servers = [{cpu} for cpu in available[:-1]]
    return servers, client


# --- server processes -----------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    cpus: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Fleet:
    """Every process the harness started; `close()` stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[Server] = []
        self._logs: list[TextIO] = []

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], cpus: set[int], port: int
    ) -> Server:
        log_path = self.workdir / f"{name}-{port}.log"
        log = log_path.open("w")
        self._logs.append(log)
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
        )
        server = Server(name, port, process, log_path, cpus)
        self.servers.append(server)
        pin(process.pid, cpus)
        return server

    def start_lockbox(
        self,
        database_url: str,
        broker_url: str,
        cpus: set[int],
        *,
        env: dict[str, str] | None = None,
    ) -> Server:
        port = free_port()
        argv = [
            lockbox_script(),
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
        # The per-principal limits would otherwise cap a single engineer's
        # calls and a single customer's thousands of sockets.
        environment = child_env(
            LOCKBOX_RATE_LIMIT_PER_SECOND="0",
            LOCKBOX_MAX_SOCKETS_PER_PRINCIPAL="0",
            LOCKBOX_MAX_SOCKETS_PER_ADDRESS="0",
            **(env or {}),
        )
        return self._spawn("lockbox", argv, environment, cpus, port)

    def start_baseline(self, database_url: str, cpus: set[int]) -> Server:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "bench.baseline_app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--database-url",
            database_url,
        ]
        return self._spawn("baseline", argv, child_env(), cpus, port)

    def wait_ready(self, server: Server, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if server.process.poll() is not None:
                    raise BenchError(
                        f"{server.name} exited with {server.process.returncode}:\n"
                        + server.log_tail()
                    )
                try:
                    if client.get(server.http_url + path).status_code == 200:
                        # Threads started during start-up (the SQLite worker) get pinned too.
                        pin(server.pid, server.cpus)
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise BenchError(f"{server.name} not ready after {timeout}s:\n" + server.log_tail())

    def stop(self, server: Server, timeout: float = 15) -> None:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(5)
        if server in self.servers:
            self.servers.remove(server)

    def close(self) -> None:
        for server in list(self.servers):
            try:
                self.stop(server)
            except (OSError, subprocess.SubprocessError):
                server.process.kill()
        for log in self._logs:
            log.close()
        self._logs.clear()


@contextmanager
def running(fleet: Fleet, server: Server) -> Iterator[Server]:
    """Wait for a started server, and stop it when the block ends."""
    try:
        fleet.wait_ready(server)
        yield server
    finally:
        fleet.stop(server)


def run_module(module: str, spec: dict[str, Any], cpus: set[int], timeout: float) -> dict[str, Any]:
    """Run `python -m MODULE` with a JSON spec on stdin; its JSON result from stdout."""
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        cwd=REPO,
    )
    try:
        pin(process.pid, cpus)
        out, err = process.communicate(json.dumps(spec).encode(), timeout=timeout)
    except BaseException:
        process.kill()
        process.wait(5)
        raise
    if process.returncode != 0:
        raise BenchError(f"{module} failed ({process.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def run_loadgen(spec: dict[str, Any], cpus: set[int], timeout: float) -> dict[str, Any]:
    """Run one scenario in a separate load-generator process and return its result."""
    return run_module("bench.loadgen", spec, cpus, timeout)


# --- databases ------------------------------------------------------------------------


def seed_demo(database_url: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [lockbox_script(), "seed-demo", "--database-url", database_url, "--json"],
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"seed-demo failed: {done.stderr.decode()[-2000:]}")
    world: dict[str, Any] = json.loads(done.stdout)
    return world


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _pg_execute(admin_url: str, statement: str, wait_s: float = 10) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(admin_url, timeout=wait_s)
    try:
        await connection.execute(statement, timeout=wait_s)
    finally:
        await connection.close()


def postgres_reachable(admin_url: str) -> bool:
    try:
        asyncio.run(_pg_execute(admin_url, "SELECT 1", wait_s=3))
    except (OSError, TimeoutError, ImportError) as exc:
        print(f"bench: PostgreSQL not reachable at {admin_url}: {exc!r}", file=sys.stderr)
        return False
    except Exception as exc:  # asyncpg's own errors (auth, missing database)
        print(f"bench: PostgreSQL not usable at {admin_url}: {exc!r}", file=sys.stderr)
        return False
    return True


def redis_reachable(url: str) -> bool:
    async def ping() -> bool:
        import redis.asyncio as redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    try:
        return asyncio.run(ping())
    except Exception as exc:  # any failure means "not available"
        print(f"bench: Redis not reachable at {url}: {exc!r}", file=sys.stderr)
        return False


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this run, dropped afterwards."""
    name = f"lockbox_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(admin_url, name)
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_channel_url(url: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}channel=lockbox-bench-{uuid.uuid4().hex[:12]}"


@contextmanager
def fleet_in(workdir: Path) -> Iterator[Fleet]:
    with ExitStack() as stack:
        fleet = Fleet(workdir)
        stack.callback(fleet.close)
        yield fleet

"""Running the stock-client scripts of client-examples/stock/ under Node,
and reading what they print, line by line, with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

STOCK = Path(__file__).resolve().parents[2] / "client-examples" / "stock"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not on PATH")
TIMEOUT = 10


class Stream:
    """One output stream of a script: every line kept, and waited for in order."""

    def __init__(self, reader: asyncio.StreamReader, script: Script) -> None:
        self.script = script
        self.lines: list[str] = []
        self.read = 0  # lines already handed out by expect()
        self.closed = False
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._pump(reader))

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while raw := await reader.readline():
            self.lines.append(raw.decode().rstrip("\n"))
            self.changed.set()
        self.closed = True
        self.changed.set()

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The next line matching `pattern` (a regular expression)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    while self.read < len(self.lines):
                        line = self.lines[self.read]
                        self.read += 1
                        if re.search(pattern, line):
                            return line
                    if self.closed:
                        break
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s: {self.script!r}")

    async def json(self, timeout: float = TIMEOUT) -> Any:
        """The next line, which must be a JSON document."""
        return json.loads(await self.expect(r".", timeout))


class Script:
    """A running script: its stdout and stderr, and its exit."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        self.out = Stream(process.stdout, self)
        self.err = Stream(process.stderr, self)

    async def exit_code(self, timeout: float = TIMEOUT) -> int:
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await asyncio.gather(self.out.task, self.err.task)
        return code

    def __repr__(self) -> str:
        return f"stdout={self.out.lines} stderr={self.err.lines}"


@contextlib.asynccontextmanager
async def running(script: str, *args: str, url: str, token: str) -> AsyncIterator[Script]:
    """`node client-examples/stock/<script> args...` against `url` as `token`;
    stopped at the end if it is still running."""
    assert NODE is not None
    assert (STOCK / "node_modules").is_dir(), "run `npm ci` in client-examples/stock first"
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(STOCK / script),
        *args,
        cwd=STOCK,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LOCKBOX_URL": url, "LOCKBOX_TOKEN": token},
    )
    running = Script(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await asyncio.gather(running.out.task, running.err.task)

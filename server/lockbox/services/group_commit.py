"""Group commit: concurrent writes share one transaction and one commit.

Every gate call is a write, and a commit (an fsync on SQLite) per call caps
throughput. Calls that arrive while a batch is being written wait for the
next batch; each caller is answered only after the commit that makes its
record durable. The batch writer decides refusals before it writes anything,
so one caller's refusal never undoes another caller's record; a call that
fails while writing is isolated by the writer (a savepoint per call) and
answered with its own exception.

Reads that every call makes use the same batching: concurrent token checks
share one query (services.auth).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

CallT = TypeVar("CallT")
ResultT = TypeVar("ResultT")

# Writes one batch in one transaction; one outcome per call, in order (an
# exception is that caller's answer).
BatchWriter = Callable[[list[CallT]], Awaitable[Sequence[ResultT | Exception]]]


class GroupCommit(Generic[CallT, ResultT]):
    MAX_BATCH = 64

    def __init__(self, write: BatchWriter[CallT, ResultT]) -> None:
        self._write = write
        self._waiting: list[tuple[CallT, asyncio.Future[ResultT]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, call: CallT) -> ResultT:
        answer: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((call, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        # A caller that goes away does not cancel the batch it is part of.
        return await asyncio.shield(answer)

    async def _write_batches(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.MAX_BATCH]
            del self._waiting[: self.MAX_BATCH]
            try:
                outcomes = await self._write([call for call, _ in batch])
            except asyncio.CancelledError:
                # Stopped (the loop is closing): no caller is left waiting for ever.
                stopped = RuntimeError("stopped before this call was written")
                for _, answer in [*batch, *self._waiting]:
                    if not answer.done():
                        _answer(answer, stopped)
                self._waiting.clear()
                raise
            except Exception as exc:  # nothing was committed: every caller hears it
                for _, answer in batch:
                    _answer(answer, exc)
                continue
            for (_, answer), outcome in zip(batch, outcomes, strict=True):
                _answer(answer, outcome)


def _answer(answer: asyncio.Future[ResultT], outcome: ResultT | BaseException) -> None:
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
        # Mark it seen, in case the caller has gone away.
        answer.add_done_callback(lambda done: done.exception())
    else:
        answer.set_result(outcome)

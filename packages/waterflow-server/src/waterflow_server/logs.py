"""Step log lines on the server: stored as agents push them, read and followed by users.

Following a run streams what is stored, then waits for the next push for that run (or a
second, to look at the run's state). It ends once the run has ended and every step attempt
that sent lines has sent its end too, or `END_GRACE` seconds after the run ended when one never
will (its agent died mid-step: the lines it sent before are what there is).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from google.protobuf import timestamp_pb2

from waterflow._proto.v1 import agent_pb2, user_pb2
from waterflow_server.store import LogRow, NewLine, Store

__all__ = ["END_GRACE", "LogHub", "Logs"]

END_GRACE = 5.0
_PAGE = 1000
_RECHECK = 1.0


class LogHub:
    """Wakes the followers of a run when lines for it arrive."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, run_id: str) -> asyncio.Event:
        """Take this before reading, wait on it after: no push is missed in between."""
        return self._events.setdefault(run_id, asyncio.Event())

    def notify(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()


def _entry(row: LogRow) -> user_pb2.LogEntry:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(row.time * 1e9))
    return user_pb2.LogEntry(
        step=agent_pb2.StepRef(
            run_id=row.run_id,
            job=row.job,
            step=row.step,
            index=row.step_index,
            name=row.step_name,
            attempt=row.attempt,
        ),
        seq=row.seq,
        time=stamp,
        stream=row.stream,
        text=row.text,
        agent_id=row.agent_id,
    )


class Logs:
    def __init__(self, store: Store, *, end_grace: float = END_GRACE) -> None:
        self.store = store
        self.hub = LogHub()
        self.end_grace = end_grace

    async def push(self, request: agent_pb2.PushLogsRequest) -> int:
        lines: list[NewLine] = []
        ends: list[tuple[str, str, str, int, int]] = []
        for group in request.steps:
            ref = group.step
            for line in group.lines:
                lines.append(
                    NewLine(
                        run_id=ref.run_id,
                        job=ref.job,
                        step=ref.step,
                        step_index=ref.index,
                        step_name=ref.name,
                        attempt=ref.attempt,
                        seq=line.seq,
                        time=line.time.ToNanoseconds() / 1e9,
                        stream=line.stream,
                        text=line.text,
                    )
                )
            if group.ended:
                ends.append((ref.run_id, ref.job, ref.step, ref.attempt, group.total))
        stored = await self.store.call(self.store.add_lines, request.agent_id, lines, ends)
        for run_id in {g.step.run_id for g in request.steps}:
            self.hub.notify(run_id)
        return stored

    def _page(self, run_id: str, after: int, job: str, step: str) -> list[LogRow]:
        return self.store.lines(
            run_id, after=after, job=job or None, step=step or None, limit=_PAGE
        )

    async def has_lines(self, run_id: str) -> bool:
        return bool(await self.store.call(lambda: self.store.lines(run_id, limit=1)))

    async def stream(
        self,
        run_id: str,
        *,
        job: str = "",
        step: str = "",
        follow: bool = False,
        closed: Callable[[str], Awaitable[bool]] | None = None,
    ) -> AsyncIterator[user_pb2.LogEntry]:
        cursor = 0
        ended_at: float | None = None
        checked = 0.0
        while True:
            arrived = self.hub.event(run_id)
            rows = await self.store.call(self._page, run_id, cursor, job, step)
            for row in rows:
                cursor = row.id
                yield _entry(row)
            if len(rows) == _PAGE:
                continue
            if not follow:
                return
            now = time.monotonic()
            if ended_at is None and closed is not None and now - checked >= _RECHECK:
                checked = now
                if await closed(run_id):
                    ended_at = now
                    continue  # read once more: lines may have landed meanwhile
            if ended_at is not None:
                open_steps = await self.store.call(self.store.open_steps, run_id)
                if open_steps == 0 or now - ended_at >= self.end_grace:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), _RECHECK)

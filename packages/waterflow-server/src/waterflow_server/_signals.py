"""How a command following a run takes its stop signals.

SIGTERM (a service manager, a CI system cancelling its job) is taken as Ctrl-C is: by default it
would end the command at once, leaving its run, and on the embedded default its dev server and
the steps' processes, with no one to stop them. A second signal leaves through the command's
normal way out, never by an exception raised inside the event loop (that hung the embedded
command in asyncio's teardown).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


class RunLeft(Exception):
    """The command stopped following its run (a second Ctrl-C or SIGTERM)."""

    def __init__(self, run_id: str = "") -> None:
        super().__init__(run_id)
        self.run_id = run_id


@contextlib.contextmanager
def stop_signals(handler: Callable[[], None]) -> Iterator[None]:
    """`handler` takes SIGINT and SIGTERM inside the block. Outside the main thread, or on a
    platform without loop signal handlers, Python's own handling of Ctrl-C stays."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, handler)
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)


async def unless_left(work: Awaitable[T], leave: asyncio.Event | None) -> T:
    """What `work` gives, or `RunLeft` once `leave` is set first; neither is left running."""
    working = asyncio.ensure_future(work)
    leaving = asyncio.ensure_future(leave.wait() if leave is not None else asyncio.Future())
    try:
        await asyncio.wait({working, leaving}, return_when=asyncio.FIRST_COMPLETED)
        if not working.done():
            raise RunLeft
        return working.result()
    finally:
        for task in (working, leaving):
            task.cancel()
        await asyncio.gather(working, leaving, return_exceptions=True)

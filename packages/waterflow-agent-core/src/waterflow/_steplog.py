"""A step's own log: stdout and stderr lines of what the node ran, masked, in one file."""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from loguru import logger

from waterflow._masking import SecretMasker

TAIL_LINES = 40
_OWN = "wf "  # lines of Waterflow's own about the step: in the file, not in the tail
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data` (a write to a regular file is short only on a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LineListener(Protocol):
    """Receives a step's lines as they are written (the agent ships them to the server).

    `line` is called under the log's lock, in order, with the line's 1-based number, its time
    (seconds since the epoch), its stream (`out`, `err`, or `wf` for Waterflow's own lines)
    and the masked text; it must return at once (queue the line, never block). `closed` is
    called once with the number of lines written when the log is closed. An exception raised
    by a listener is logged and the listener dropped: the step goes on.
    """

    def line(self, number: int, stamp: float, stream: str, text: str) -> None: ...

    def closed(self, total: int) -> None: ...


class StepLog:
    """Writes a step's output to its log file; keeps the last lines for failure messages.

    Every line goes through the secret masker first. Lines carry a UTC timestamp and the stream
    they came from in the file; `tail()` gives them bare.
    """

    def __init__(
        self,
        path: Path | None,
        masker: SecretMasker,
        *,
        tail_lines: int = TAIL_LINES,
        listener: LineListener | None = None,
    ):
        self.path = path
        self._listener = listener
        self._masker = masker
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        # A raw descriptor opened for appending: each chunk of output is one write(2), in
        # the file at once for `waterflow logs -f`, without a buffered text layer to flush.
        self._fd: int | None = None
        if path is not None:
            try:
                self._fd = os.open(path, _FLAGS, 0o666)
            except FileNotFoundError:  # the job's first step here: its folder is made once
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(path, _FLAGS, 0o666)
        self.lines_written = 0
        self._second = -1  # the last whole second stamped, and its stamp
        self._stamp = ""

    def _write(self, stream: str, text: str) -> None:
        lines = [self._masker.mask(raw) for raw in text.splitlines() or [""]]
        with self._lock:
            now = time.time()
            if int(now) != self._second:
                self._second = int(now)
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._second))
            if stream != _OWN:
                self._tail.extend(lines)
            first = self.lines_written + 1
            self.lines_written += len(lines)
            if self._fd is not None:
                prefix = f"{self._stamp} {stream} "
                chunk = "".join(f"{prefix}{line}\n" for line in lines)
                _write_all(self._fd, chunk.encode("utf-8", "replace"))
            if self._listener is not None:
                kind = stream.strip()
                try:
                    for number, line in enumerate(lines, first):
                        self._listener.line(number, now, kind, line)
                except Exception as exc:
                    self._drop_listener(exc)

    def _drop_listener(self, exc: Exception) -> None:
        self._listener = None
        logger.warning("Step log listener failed; lines go to the file only: {}", exc)

    def stdout(self, text: str) -> None:
        self._write("out", text)

    def stderr(self, text: str) -> None:
        self._write("err", text)

    def info(self, text: str) -> None:
        """A line from Waterflow itself about the step (not the node's own output)."""
        self._write(_OWN, text)

    def tail(self, n: int | None = None) -> list[str]:
        with self._lock:
            lines = list(self._tail)
        return lines if n is None else lines[-n:]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._listener is not None:
                try:
                    self._listener.closed(self.lines_written)
                except Exception as exc:
                    self._drop_listener(exc)
            self._listener = None

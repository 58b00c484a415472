"""Leaving a process that used a Temporal client."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from loguru import logger


def exit_process(code: int) -> NoReturn:
    """Flush and end the process without interpreter finalization.

    The Temporal SDK's native runtime keeps threads that may still call into Python while the
    interpreter finalizes, which aborts the process (SIGABRT) after the work is done and
    replaces a correct exit code. Everything of ours is finished and flushed by now.
    """
    logger.complete()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

"""How long a Slack node may keep trying: its `timeout`, capped by what is left of the step's."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import attrs
from temporalio import activity

DEFAULT_TIMEOUT = 60.0

# The agent fails a step a little before Temporal's start-to-close timeout, so that the failure
# carries the step's log; a node gives up a little before that, with its own clearer message.
_MAX_MARGIN = 2.0
_MARGIN_SHARE = 0.2


def step_time_left(now: datetime | None = None) -> float | None:
    """Seconds this step may still run, from its activity's start-to-close timeout.

    None outside an activity or when the step has no timeout. The activity's start time is the
    server's clock: when it is not within the timeout of this agent's clock (the clocks differ),
    the whole timeout is counted from now.
    """
    if not activity.in_activity():
        return None
    info = activity.info()
    total = info.start_to_close_timeout
    if not total:
        return None
    seconds = total.total_seconds()
    elapsed = ((now or datetime.now(UTC)) - info.started_time).total_seconds()
    if not 0.0 <= elapsed < seconds:
        elapsed = 0.0
    left = seconds - elapsed
    return max(0.0, left - min(_MAX_MARGIN, seconds * _MARGIN_SHARE))


@attrs.frozen
class Budget:
    """A deadline on the monotonic clock and where it comes from, for messages."""

    seconds: float
    source: str
    started: float
    deadline: float

    @classmethod
    def for_step(cls, timeout: float, *, step_left: float | None = None) -> Budget:
        """The budget of a node given `timeout:` seconds and what the step has left."""
        now = time.monotonic()
        if step_left is not None and step_left < timeout:
            return cls(step_left, "what is left of the step's timeout", now, now + step_left)
        return cls(timeout, "the node's timeout parameter", now, now + timeout)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        return f"{round(self.seconds, 1):g}s, {self.source}"

"""The process log: JSON lines (or console lines) from loguru and from stdlib logging."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from loguru import logger

from waterflow import _logging
from waterflow._logging import intercept_stdlib_logging, setup_logging

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


_stderr_handler = 0  # loguru's default handler; re-added under a new id after each test


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave loguru and the stdlib root logger as the test found them."""
    global _stderr_handler
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logger.remove(_stderr_handler)
        had_stderr = True
    except ValueError:
        had_stderr = False
    yield
    if _logging._handler_id is not None:
        logger.remove(_logging._handler_id)
        _logging._handler_id = None
    if had_stderr:
        _stderr_handler = logger.add(sys.stderr)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line(stream: io.StringIO) -> None:
    setup_logging("info", "json", stream)
    logger.info("Registered worker for task queue", task_queue="q")
    (record,) = records(stream)
    assert list(record) == ["time", "level", "message", "task_queue"]
    assert record["level"] == "info"
    assert record["message"] == "Registered worker for task queue"
    assert record["task_queue"] == "q"
    assert TIME.fullmatch(record["time"])
    logged = datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - logged) < timedelta(minutes=1)


def test_one_compact_object_per_line(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    logger.info("first\nsecond", note="a\nb")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('{"time":"')


def test_bound_fields_and_lowercase_levels(stream: io.StringIO) -> None:
    setup_logging("debug", "json", stream)
    worker = logger.bind(index=0)
    worker.debug("Stopping worker")
    worker.warning("Slow")
    worker.error("Failed")
    got = [(r["level"], r["message"], r["index"]) for r in records(stream)]
    assert got == [("debug", "Stopping worker", 0), ("warning", "Slow", 0), ("error", "Failed", 0)]


def test_values_json_cannot_carry_are_strings(stream: io.StringIO) -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    setup_logging(stream=stream)
    logger.info("Configuration loaded", thing=Thing(), nested={"queues": ["a"], "n": 1})
    (record,) = records(stream)
    assert record["thing"] == "a thing"
    assert record["nested"] == {"queues": ["a"], "n": 1}


def test_fields_named_like_the_fixed_keys_are_kept_apart(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    logger.bind(time="later", level="high").info("hello")
    (record,) = records(stream)
    assert (record["level"], record["extra_level"], record["extra_time"]) == (
        "info",
        "high",
        "later",
    )


def test_exception_is_one_error_line_without_traceback(stream: io.StringIO) -> None:
    setup_logging("info", "json", stream)
    try:
        raise TimeoutError("context deadline exceeded\nmore detail")
    except TimeoutError:
        logger.exception("Worker shutdown failed")
    (record,) = records(stream)
    assert record["level"] == "error"
    assert record["error"] == "context deadline exceeded"
    assert record["error_type"] == "TimeoutError"
    assert "traceback" not in record


def test_exception_without_text_names_its_type(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    logger.opt(exception=KeyboardInterrupt()).warning("Interrupted")
    (record,) = records(stream)
    assert record["error"] == "KeyboardInterrupt"


def test_traceback_at_debug_level(stream: io.StringIO) -> None:
    setup_logging("debug", "json", stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("Failed")
    (record,) = records(stream)
    assert record["error"] == "bad"
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert record["traceback"].endswith("ValueError: bad")


def test_an_error_field_given_by_the_caller_is_kept(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    logger.error("Worker shutdown failed", error="context deadline exceeded")
    (record,) = records(stream)
    assert record["error"] == "context deadline exceeded"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warn", ["warning", "error"]),
        ("WARNING", ["warning", "error"]),
        ("error", ["error"]),
    ],
)
def test_level_filters(stream: io.StringIO, level: str, shown: list[str]) -> None:
    setup_logging(level, "json", stream)
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    assert [r["level"] for r in records(stream)] == shown


def test_calling_it_again_replaces_the_sink(stream: io.StringIO) -> None:
    first = io.StringIO()
    setup_logging("info", "json", first)
    setup_logging("info", "json", stream)
    setup_logging("info", "json", stream)
    logger.info("once")
    assert first.getvalue() == ""
    assert [r["message"] for r in records(stream)] == ["once"]


def test_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    logger.info("to stdout", n=1)
    out, err = capsys.readouterr()
    assert json.loads(out)["message"] == "to stdout"
    assert err == ""


def test_console_line(stream: io.StringIO) -> None:
    setup_logging("info", "console", stream)
    logger.info("Registered worker for task queue", task_queue="q")
    (line,) = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO    Registered worker for task queue"
        r"  task_queue=q",
        line,
    )


def test_console_shows_the_traceback(stream: io.StringIO) -> None:
    setup_logging("info", "console", stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("Failed")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("ERROR   Failed")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad"


def test_bad_level() -> None:
    with pytest.raises(ValueError) as info:
        setup_logging("verbose")
    assert str(info.value) == "'verbose' is not a log level; use debug, info, warning or error"


def test_bad_format() -> None:
    with pytest.raises(ValueError) as info:
        setup_logging("info", "xml")
    assert str(info.value) == "'xml' is not a log format; use json or console"


def test_stdlib_logging_from_warning_up(stream: io.StringIO) -> None:
    setup_logging("debug", "json", stream)
    intercept_stdlib_logging()
    intercept_stdlib_logging()  # again: still one handler
    temporal = logging.getLogger("temporalio.worker._activity")
    temporal.info("Beginning worker shutdown")
    temporal.warning("Activity %s heartbeat timed out", "abc")
    try:
        raise RuntimeError("poll failed")
    except RuntimeError:
        temporal.exception("Worker failed")
    got = records(stream)
    assert [(r["level"], r["message"], r["logger"]) for r in got] == [
        ("warning", "Activity abc heartbeat timed out", "temporalio.worker._activity"),
        ("error", "Worker failed", "temporalio.worker._activity"),
    ]
    assert got[1]["error"] == "poll failed"


def test_stdlib_logging_at_a_lower_level(stream: io.StringIO) -> None:
    setup_logging("debug", "json", stream)
    intercept_stdlib_logging("debug")
    logging.getLogger("temporalio").debug("details")
    assert [r["message"] for r in records(stream)] == ["details"]


def test_stdlib_logging_keeps_other_handlers(stream: io.StringIO) -> None:
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)
    intercept_stdlib_logging()
    assert other in logging.getLogger().handlers


def test_a_bad_stdlib_format_string_does_not_raise(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_logging("info", "json", stream)
    intercept_stdlib_logging()
    monkeypatch.setattr(logging, "raiseExceptions", False)
    logging.getLogger("x").warning("%d apples", "many")
    assert stream.getvalue() == ""


def test_default_stream_is_looked_up_when_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    setup_logging()
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replaced)
    logger.info("late")
    assert json.loads(replaced.getvalue())["message"] == "late"

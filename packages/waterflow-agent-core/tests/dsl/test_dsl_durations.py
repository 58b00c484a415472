"""parse_duration: the duration strings of dsl.md."""

from __future__ import annotations

import pytest

from waterflow.dsl import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1m30s250ms", 90.25),
        (" 45s ", 45.0),
        ("0s", 0.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "duration '10' has no unit"),
        ("1.5", "duration '1.5' has no unit"),
        ("", "empty duration"),
        ("10 minutes", "invalid duration '10 minutes'"),
        ("10M", "invalid duration '10M'"),
        ("-5s", "invalid duration '-5s'"),
        ("1h 30m", "invalid duration '1h 30m'"),
        ("s", "invalid duration 's'"),
        ("1e3s", "invalid duration '1e3s'"),
        ("9" * 400 + "d", "is too long"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"'500ms', '90s', '10m'|too long") as caught:
        parse_duration(text)
    assert message in str(caught.value)

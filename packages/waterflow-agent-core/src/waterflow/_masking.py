"""The secret masker: every value of a secret is replaced by `***` wherever it would be shown."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***"


class SecretMasker:
    """Masks registered values in text. Thread-safe; values only ever get added.

    A multi-line value is masked as a whole and line by line, so a secret split over lines of
    a log is still hidden. Values of fewer than two characters are not masked: hiding every
    `1` in a log would make it unreadable and hides nothing worth hiding.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str | None) -> None:
        if not value:
            return
        candidates = {value.strip("\r\n"), *(line.strip("\r") for line in value.splitlines())}
        with self._lock:
            before = len(self._values)
            self._values.update(c for c in candidates if len(c.strip()) >= 2)
            if len(self._values) != before:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __bool__(self) -> bool:
        return bool(self._values)

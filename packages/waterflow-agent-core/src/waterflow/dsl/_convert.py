"""Teaching a cattrs converter the model's unions of plain values."""

from __future__ import annotations

from typing import TypeVar

import cattrs
from cattrs.strategies import configure_union_passthrough

_C = TypeVar("_C", bound=cattrs.Converter)


def configure_converter(converter: _C) -> _C:
    """Make `converter` structure the model's `bool | str` and `str | bool | float | None`.

    A bare `cattrs.Converter()` cannot structure such unions of plain values (it raises
    `StructureHandlerNotFoundError`); after this call the whole model round-trips through
    `unstructure` → JSON → `structure`. The converters of `cattrs.preconf` already can.
    Returns `converter`.
    """
    configure_union_passthrough(str | bool | int | float | None, converter)
    return converter

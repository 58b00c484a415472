"""The data converter: attrs classes travel as JSON through one private cattrs converter."""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs
import temporalio.api.common.v1
from temporalio.converter import (
    AdvancedJSONEncoder,
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
)

from waterflow.dsl import configure_converter

_converter = cattrs.Converter(omit_if_default=True)
# The language's models hold unions of plain values (`continue-on-error: bool | str`).
configure_converter(_converter)


def unstructure(value: Any) -> Any:
    return _converter.unstructure(value)


def structure(value: Any, cls: Any) -> Any:
    return _converter.structure(value, cls)


class _AttrsJSONPayloadConverter(JSONPlainPayloadConverter):
    """json/plain, with attrs instances unstructured and attrs type hints structured."""

    def to_payload(self, value: Any) -> temporalio.api.common.v1.Payload | None:
        if attrs.has(type(value)):
            value = _converter.unstructure(value)
        # Keys keep their order (the default converter sorts them): the order of jobs and
        # steps in a result is the file's.
        return temporalio.api.common.v1.Payload(
            metadata={"encoding": self.encoding.encode()},
            data=json.dumps(value, cls=AdvancedJSONEncoder, separators=(",", ":")).encode(),
        )

    def from_payload(
        self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None
    ) -> Any:
        if type_hint is not None and attrs.has(type_hint):
            return _converter.structure(json.loads(payload.data), type_hint)
        return super().from_payload(payload, type_hint)


class WaterflowPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            JSONProtoPayloadConverter(),
            BinaryProtoPayloadConverter(),
            _AttrsJSONPayloadConverter(),
        )


data_converter = DataConverter(payload_converter_class=WaterflowPayloadConverter)

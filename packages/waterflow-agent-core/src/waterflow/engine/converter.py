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
from waterflow.dsl.model import StepSpec

_converter = cattrs.Converter(omit_if_default=True)
# The language's models hold unions of plain values (`continue-on-error: bool | str`).
configure_converter(_converter)

# What most steps leave unset, with its value then: left out of a step's JSON, which travels
# with each of its job's steps and in the job's and the run's inputs.
_STEP_UNSET: dict[str, Any] = {
    "id": None,
    "name": None,
    "with_": {},
    "env": {},
    "if_": None,
    "continue_on_error": False,
    "timeout": None,
    "heartbeat_timeout": None,
    "retry": None,
}
_unstructure_step = _converter.get_unstructure_hook(StepSpec)
_structure_step = _converter.get_structure_hook(StepSpec)
_converter.register_unstructure_hook(
    StepSpec,
    lambda step: {
        key: value
        for key, value in _unstructure_step(step).items()
        if key not in _STEP_UNSET or value != _STEP_UNSET[key]
    },
)
_converter.register_structure_hook(
    StepSpec, lambda data, cls: _structure_step({**_STEP_UNSET, **data}, cls)
)


def unstructure(value: Any) -> Any:
    return _converter.unstructure(value)


def structure(value: Any, cls: Any) -> Any:
    return _converter.structure(value, cls)


# One encoder for every payload (two or more a step): `json.dumps(cls=...)` builds one a call.
_ENCODER = AdvancedJSONEncoder(separators=(",", ":"))


class _AttrsJSONPayloadConverter(JSONPlainPayloadConverter):
    """json/plain, with attrs instances unstructured and attrs type hints structured."""

    def to_payload(self, value: Any) -> temporalio.api.common.v1.Payload | None:
        if attrs.has(type(value)):
            value = _converter.unstructure(value)
        # Keys keep their order (the default converter sorts them): the order of jobs and
        # steps in a result is the file's.
        return temporalio.api.common.v1.Payload(
            metadata={"encoding": self.encoding.encode()},
            data=_ENCODER.encode(value).encode(),
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

"""The base of every request model, and pydantic's errors rendered as the E4000 problem list the API has always sent:
`[{field, reason}]`, unknown fields first, each field at most once, in the reasons' old words."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, Self, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from coupon.domain.errors import ValidationFailed

_MAX_FIELD_NAME = 64  # an unknown field's name is echoed, cut to this
_BUILTIN_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
}
# The order problems are listed in (as before the models): what the caller sent that we don't know, a body-wide
# problem, nulls, then each field's own in the fields' order, and a name's characters last (checked once every
# size was).
_ORDER = {"extra_forbidden": 0, "body": 1, "not_null": 2, "string_pattern_mismatch": 4}
_FIELD_ORDER = 3


class RequestModel(BaseModel):
    """What a caller sends: camelCase keys, nothing unknown; `check` turns every problem into one ValidationFailed."""

    # defer_build: the validators are built on first use, so a process that never parses a body (the consumer, rq)
    # does not pay for them at import.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, defer_build=True)

    # How a bound of an integer is worded; a query's integer words both its type and its bounds this way.
    bounds_reason: ClassVar[str] = "must be between {ge} and {le}"
    integer_reason: ClassVar[str] = "must be an integer"
    # A reason for a field whatever went wrong with it, or for one kind of problem of it: (alias, error type or None).
    reasons: ClassVar[Mapping[tuple[str, str | None], str]] = {}

    @classmethod
    def check(cls, data: Any, context: dict[str, Any] | None = None, *, by_name: bool = False) -> Self:
        """Validate untrusted data (keys as on the wire); `by_name`: Python values keyed by field name (the CLI)."""
        try:
            return cls.model_validate(data, context=context, by_alias=True, by_name=by_name)
        except ValidationError as exc:
            problems = cls.problems(exc, by_name=by_name)
        raise ValidationFailed(f"Invalid fields: {', '.join(p['field'] for p in problems)}", data=problems)

    @classmethod
    def problems(cls, exc: ValidationError, *, by_name: bool = False) -> list[dict[str, str]]:
        errors = sorted(exc.errors(include_url=False), key=_rank)
        # Validated by field name (the CLI), a problem still names the field as the API does.
        aliases = {name: info.alias for name, info in cls.model_fields.items() if info.alias} if by_name else {}
        for error in errors:
            if error["loc"] and error["loc"][0] in aliases and error["type"] != "extra_forbidden":
                error["loc"] = (aliases[str(error["loc"][0])], *error["loc"][1:])
        return [{"field": _field(error), "reason": cls._reason(error)} for error in errors]

    @classmethod
    def _reason(cls, error: ErrorDetails) -> str:
        field, kind = _field(error), error["type"]
        if kind == "extra_forbidden":
            return "unknown field"
        special = cls.reasons.get((field, kind)) or cls.reasons.get((field, None))
        if special is not None:
            return special
        if error["input"] is None and kind != "not_null" and error["loc"]:
            return "is required"  # a null stands for a value left out
        info = _info(cls, field)
        if kind in ("string_too_short", "string_too_long") and info is not None:
            return f"must be {_bound(info, 'min_length')} to {_bound(info, 'max_length')} characters long"
        if kind == "enum" and info is not None:
            return f"must be one of {', '.join(str(m.value) for m in _enum_of(info))}"
        if kind in ("greater_than_equal", "less_than_equal", "int_parsing") and info is not None:
            ge, le = _bound(info, "ge"), _bound(info, "le")
            if ge is not None and le is not None:
                return cls.bounds_reason.format(ge=ge, le=le)
            if le is not None:
                return f"must not exceed {le}"
        if kind == "greater_than" and info is not None:
            return f"must be greater than {_bound(info, 'gt')}"
        if kind in ("int_type", "int_from_float", "int_parsing"):
            return cls.integer_reason
        return _BUILTIN_REASONS.get(kind, error["msg"])


def _field(error: ErrorDetails) -> str:
    return str(error["loc"][0])[:_MAX_FIELD_NAME] if error["loc"] else "body"


def _rank(error: ErrorDetails) -> int:
    return _ORDER.get("body" if not error["loc"] else error["type"], _FIELD_ORDER)


def _info(model: type[BaseModel], alias: str) -> FieldInfo | None:
    for info in model.model_fields.values():
        if info.alias == alias:
            return info
    return None


_BOUNDS = {
    "min_length": annotated_types.MinLen,
    "max_length": annotated_types.MaxLen,
    "ge": annotated_types.Ge,
    "le": annotated_types.Le,
    "gt": annotated_types.Gt,
}


def _bound(info: FieldInfo, name: str) -> Any:
    kind = _BOUNDS[name]
    for item in _metadata(info.metadata, info.annotation):
        if isinstance(item, kind):
            return getattr(item, name)
    return None


def _metadata(metadata: list[Any], annotation: Any) -> Iterator[Any]:
    """The field's constraints, also those of an optional field's inner type (`Annotated[int, Field(...)] | None`)."""
    for item in metadata:
        yield from _metadata(item.metadata, None) if isinstance(item, FieldInfo) else (item,)
    for arg in get_args(annotation):
        if get_origin(arg) is Annotated:
            yield from _metadata(list(arg.__metadata__), None)
        elif get_args(arg):
            yield from _metadata([], arg)


def _enum_of(info: FieldInfo) -> type[Enum]:
    for candidate in (info.annotation, *get_args(info.annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    raise TypeError(f"no Enum in {info.annotation}")

"""The models as OpenAPI 3.1 components: their JSON Schema with #/components/schemas references, numbers as JSON
numbers, no titles or null defaults (noise for readers and for generated clients)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import CoreSchema, core_schema

from coupon.http.schemas import bodies, replies
from coupon.http.schemas.queries import LIST_QUERIES, ListParams

REF = "#/components/schemas/{model}"
BODIES: tuple[type[BaseModel], ...] = (
    bodies.Signup,
    bodies.Credentials,
    bodies.RefreshRequest,
    bodies.CouponDraft,
    bodies.CouponPatch,
)
_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _number(value: Decimal | int | float) -> int | float:
    return int(value) if value == int(value) else float(value)


class ApiJsonSchema(GenerateJsonSchema):
    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        # The API reads and writes amounts as JSON numbers (never strings); Decimal only keeps them exact inside.
        out: JsonSchemaValue = {"type": "number"}
        for key, name in _BOUNDS.items():
            bound = schema.get(key)
            if isinstance(bound, Decimal | int | float):
                out[name] = _number(bound)
        return out

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        if out.get("default", ...) is None:
            del out["default"]  # a field left out, not a documented null
        return out

    def generate(self, schema: CoreSchema, mode: Any = "validation") -> JsonSchemaValue:
        return _untitled(super().generate(schema, mode))


def _untitled(schema: JsonSchemaValue) -> JsonSchemaValue:
    schema.pop("title", None)
    for value in schema.get("$defs", {}).values():
        value.pop("title", None)
    return schema


def component_schemas() -> dict[str, Any]:
    """Every body and reply model, and the enums and models they use, by name."""
    models = [(model, "validation") for model in (*BODIES, *replies.REPLIES, *LIST_QUERIES)]
    _, top = models_json_schema(models, ref_template=REF, schema_generator=ApiJsonSchema)  # type: ignore[arg-type]
    defs: dict[str, Any] = top["$defs"]
    for value in defs.values():
        value.pop("title", None)
    # Only what the bodies and replies use, and what the queries' parameters refer to: a query is parameters, not a
    # schema, and the positions its cursors decode to are never on the wire.
    wanted = [model.__name__ for model in (*BODIES, *replies.REPLIES)]
    wanted += [name for model in LIST_QUERIES for name in _refs(query_parameters(model))]
    kept: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()
        if name not in kept:
            kept[name] = defs[name]
            wanted.extend(_refs(defs[name]))
    return dict(sorted(kept.items()))


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        own = [ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else []
        return own + [name for item in value.values() for name in _refs(item)]
    if isinstance(value, list):
        return [name for item in value for name in _refs(item)]
    return []


def query_parameters(model: type[ListParams]) -> list[dict[str, Any]]:
    """A query model as OpenAPI parameters, in its fields' order."""
    schema = model.model_json_schema(ref_template=REF, schema_generator=ApiJsonSchema)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        out.append(param)
    return out

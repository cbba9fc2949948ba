"""One source for every limit: the OpenAPI document's schemas are the models' (coupon/http/schemas), each documented
bound is the one validation enforces, and neither parsing.py nor openapi.py states a limit of its own."""

from __future__ import annotations

import ast
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coupon.domain.errors import ValidationFailed
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import CouponStatus, CouponType, DiscountType
from coupon.http.openapi import document
from coupon.http.presenters import coupon_json
from coupon.http.schemas import bodies, queries, replies
from coupon.http.schemas.components import component_schemas
from coupon.http.schemas.fields import MAX_FIXED_DISCOUNT, MAX_QUANTITY, NAME_MAX_LENGTH, USERNAME_PATTERN
from coupon.http.schemas.headers import IDEMPOTENCY_KEY_PATTERN
from coupon.http.schemas.problems import RequestModel
from coupon.services.catalog import Stock

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 1, 12, 0, 0)
SCHEMAS = document()["components"]["schemas"]


def _params(path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in document()["paths"][path][method].get("parameters", [])}


def test_the_documents_schemas_are_the_models() -> None:
    assert {name: SCHEMAS[name] for name in component_schemas()} == component_schemas()


def test_the_documented_limits_are_the_declared_constants() -> None:
    draft = SCHEMAS["CouponDraft"]["properties"]
    assert draft["totalQuantity"]["maximum"] == MAX_QUANTITY
    assert draft["discountValue"]["maximum"] == MAX_FIXED_DISCOUNT and draft["discountValue"]["exclusiveMinimum"] == 0
    assert draft["name"]["maxLength"] == NAME_MAX_LENGTH
    assert SCHEMAS["CouponPatch"]["properties"]["totalQuantity"]["maximum"] == MAX_QUANTITY
    assert SCHEMAS["Signup"]["properties"]["username"]["pattern"] == USERNAME_PATTERN
    issue = _params("/api/coupon/{coupon_id}/issue", "post")
    assert issue["Idempotency-Key"]["schema"]["pattern"] == f"^{IDEMPOTENCY_KEY_PATTERN}$"
    for path, (default, maximum) in [
        ("/api/coupon", queries.LISTING_LIMIT),
        ("/api/coupon/{coupon_id}/issued", queries.LEDGER_LIMIT),
        ("/api/coupon/{coupon_id}/events", queries.EVENTS_LIMIT),
        ("/api/admin/failures", queries.FAILURES_LIMIT),
    ]:
        assert _params(path)["limit"]["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": maximum,
            "default": default,
        }


# Every bound the document states for a body field, tried at the bound and one past it: validation agrees.
VALID_BODIES: list[tuple[type[RequestModel], dict[str, Any]]] = [
    (bodies.Signup, {"username": "alice", "password": "password-1"}),
    (bodies.Credentials, {"username": "alice", "password": "password-1"}),
    (bodies.RefreshRequest, {"refreshToken": "token"}),
    (
        bodies.CouponDraft,
        {
            "name": "pizza",
            "type": "PIZZA",
            "discountType": "FIXED",
            "discountValue": 3000,
            "totalQuantity": 5,
            "expiresAt": "2026-12-01T00:00:00Z",
        },
    ),
    (bodies.CouponPatch, {"name": "pizza"}),
]


def _bounds() -> list[tuple[type[RequestModel], dict[str, Any], str, Any, Any]]:
    """(model, a valid body, field, a value at the documented bound, a value just past it)."""
    cases = []
    for model, body in VALID_BODIES:
        for field, schema in SCHEMAS[model.__name__]["properties"].items():
            if "maxLength" in schema:
                cases.append((model, body, field, "a" * schema["maxLength"], "a" * (schema["maxLength"] + 1)))
            if schema.get("minLength", 0) > 1:
                cases.append((model, body, field, "a" * schema["minLength"], "a" * (schema["minLength"] - 1)))
            if "maximum" in schema:
                cases.append((model, body, field, schema["maximum"], schema["maximum"] + 1))
            if "minimum" in schema:
                cases.append((model, body, field, schema["minimum"], schema["minimum"] - 1))
            if "exclusiveMinimum" in schema:
                cases.append((model, body, field, schema["exclusiveMinimum"] + 0.01, schema["exclusiveMinimum"]))
    return cases


def _problem_fields(model: type[RequestModel], body: dict[str, Any]) -> list[str]:
    try:
        model.check(body, {"now": NOW})
    except ValidationFailed as exc:
        return [p["field"] for p in exc.data]
    return []


@pytest.mark.parametrize(
    ("model", "body", "field", "inside", "outside"),
    _bounds(),
    ids=[f"{model.__name__}.{field}.{n}" for n, (model, _, field, _, _) in enumerate(_bounds())],
)
def test_validation_enforces_each_documented_bound(
    model: type[RequestModel], body: dict[str, Any], field: str, inside: Any, outside: Any
) -> None:
    assert field not in _problem_fields(model, {**body, field: inside})
    assert _problem_fields(model, {**body, field: outside}) == [field]


def test_every_documented_bound_is_tried() -> None:
    tried = {(model.__name__, field) for model, _, field, _, _ in _bounds()}
    assert {("CouponDraft", "totalQuantity"), ("CouponDraft", "discountValue"), ("CouponDraft", "name")} <= tried
    assert {("Signup", "username"), ("Signup", "password"), ("RefreshRequest", "refreshToken")} <= tried


# The limits the models declare; parsing.py and openapi.py must take them from there, never restate them.
LIMIT_NUMBERS = {3, 8, 20, 50, 100, 128, 500, 1000, MAX_QUANTITY, MAX_FIXED_DISCOUNT}
LIMIT_TEXTS = {USERNAME_PATTERN, IDEMPOTENCY_KEY_PATTERN, "A-Za-z0-9"}


@pytest.mark.parametrize("module", ["coupon/http/parsing.py", "coupon/http/openapi.py"])
def test_parsing_and_the_document_state_no_limit_of_their_own(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in LIMIT_NUMBERS:
            found.append(f"line {node.lineno}: {node.value}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: {text!r}" for text in LIMIT_TEXTS if text in node.value]
    assert not found, f"{module} restates limits: {found}"


def test_the_presented_coupon_is_a_documented_coupon() -> None:
    coupon = Coupon(
        id=str(uuid.uuid4()),
        name="pizza",
        type=CouponType.PIZZA,
        discount_type=DiscountType.FIXED,
        discount_value=Decimal("3000.50"),
        total_quantity=100,
        issued_count=0,
        issue_starts_at=NOW,
        expires_at=NOW + timedelta(days=1),
        status=CouponStatus.ACTIVE,
        created_at=NOW,
    )
    replies.Coupon.model_validate(coupon_json(coupon))
    replies.Coupon.model_validate(coupon_json(coupon, Stock(total=100, reserved=3, issued=2), NOW))


JUNK: list[Any] = [None, True, 1.5, -1, 0, 10**12, "", "x", " ", "a" * 300, [], {}, ["x"], {"a": 1}]


@pytest.mark.parametrize(("model", "body"), VALID_BODIES, ids=[m.__name__ for m, _ in VALID_BODIES])
def test_every_reason_is_the_apis_own_wording(model: type[RequestModel], body: dict[str, Any]) -> None:
    # Whatever a field receives, the problem is worded by the API (a stray pydantic message would read "Input should").
    for field in body:
        for junk in JUNK:
            try:
                model.check({**body, field: junk}, {"now": NOW})
            except ValidationFailed as exc:
                for problem in exc.data:
                    assert problem["field"] == field, (field, junk, problem)
                    assert not problem["reason"].startswith(("Input", "Value", "String")), (field, junk, problem)

"""The API's OpenAPI 3.1 document, as data: every route, body, response and the error codes each can return.

tests/integration/test_openapi.py compares it with the app's url_map both ways and runs schemathesis
against a live server with it. /metrics (Prometheus text for the scraper) is deliberately left out.
"""

from __future__ import annotations

from enum import Enum
from functools import cache
from typing import Any

from coupon.domain.errors import AppError, all_error_classes
from coupon.domain.live_stock import StockStatus
from coupon.domain.vocabulary import (
    CouponAction,
    CouponPhase,
    CouponStatus,
    CouponType,
    DiscountType,
    FailureStatus,
    IssueStatus,
    Role,
)
from coupon.http.cursors import MAX_CURSOR_LENGTH
from coupon.http.parsing import (
    EVENTS_LIMIT,
    LEDGER_LIMIT,
    LISTING_LIMIT,
    MAX_LIST_LIMIT,
    MAX_QUANTITY,
    USERNAME_RE,
)

Schema = dict[str, Any]

_ERRORS: dict[str, type[AppError]] = {cls.code: cls for cls in all_error_classes()}

# Codes by situation, combined per operation below.
AUTH = ["E1001", "E1002", "E1003", "E1006", "E1009"]  # 401 on every route that needs a token
BODY = ["E4000", "E4001", "E4002"]  # 400 on every route that reads a JSON body
ID = ["E4003", "E4004"]  # {id} routes: 400 not a UUID; 404 when the raw value has a "/" (no route matches)
LIMITED = ["E429"]  # 429: per-address limit on every /api route, per-user on authenticated ones


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _enum(cls: type[Enum]) -> Schema:
    return {"type": "string", "enum": [m.value for m in cls]}


def _obj(props: dict[str, Schema], optional: tuple[str, ...] = (), extra: bool = False) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
        "additionalProperties": extra,
    }


STR = {"type": "string"}
INT = {"type": "integer"}
UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "User": _obj({"id": UUID, "username": STR, "role": _enum(Role)}),
    "Login": _obj(
        {
            "id": UUID,
            "username": STR,
            "role": _enum(Role),
            "accessToken": STR,
            "expiresIn": {"type": "integer", "minimum": 1},
            "refreshToken": STR,
            "refreshExpiresIn": {"type": "integer", "minimum": 1},
        }
    ),
    "LoggedOut": _obj({"loggedOut": {"const": True}}),
    "RefreshRequest": {
        "type": "object",
        "properties": {"refreshToken": {"type": "string", "minLength": 1, "maxLength": 128}},
        "required": ["refreshToken"],
        "additionalProperties": False,
    },
    "Coupon": _obj(
        {
            "id": UUID,
            "name": STR,
            "type": _enum(CouponType),
            "discountType": _enum(DiscountType),
            "discountValue": {"type": "number"},
            "totalQuantity": INT,
            "issueStartsAt": TIME,
            "expiresAt": TIME,
            "status": _enum(CouponStatus),
            "createdAt": TIME,
            "stock": _obj({"total": INT, "reserved": INT, "issued": INT, "remaining": INT}),
            "phase": {**_enum(CouponPhase), "description": "live: the issue window is open now"},
        },
        optional=("stock", "phase"),
    ),
    "CouponPage": _obj(
        {
            "items": {"type": "array", "items": _ref("Coupon")},
            "nextCursor": {"type": ["string", "null"], "description": "pass as ?cursor= for the next page"},
        }
    ),
    "CouponPatch": {
        "type": "object",
        "properties": {
            "status": {**_enum(CouponStatus), "description": "DISABLED is the kill switch: no request is accepted"},
            "issueStartsAt": {**TIME, "description": "without an offset it means UTC"},
            "expiresAt": {**TIME, "description": "after issueStartsAt; now or earlier closes the window"},
            "totalQuantity": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_QUANTITY,
                "description": "never below what is reserved (gate) or issued (DB): 409 E3010",
            },
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
        },
        "minProperties": 1,
        "additionalProperties": False,
        "examples": [{"status": "DISABLED"}, {"totalQuantity": 200, "expiresAt": "2999-12-31T00:00:00Z"}],
    },
    "LedgerPage": _obj(
        {
            "items": {
                "type": "array",
                "items": _obj(
                    {
                        "userId": UUID,
                        "username": {"type": ["string", "null"], "description": "null once the account is deleted"},
                        "rank": INT,
                        "issuedAt": TIME,
                        "used": {"type": "boolean"},
                        "usedAt": TIME_OR_NULL,
                    }
                ),
            },
            "nextCursor": {"type": ["string", "null"]},
        }
    ),
    "EventsPage": _obj(
        {
            "items": {
                "type": "array",
                "items": _obj(
                    {
                        "id": INT,
                        "couponId": UUID,
                        "actor": {"type": "string", "description": "the admin's user id, or cli / cli:<os user>"},
                        "actorName": {"type": ["string", "null"], "description": "the admin's username, if any"},
                        "at": TIME,
                        "action": _enum(CouponAction),
                        "changes": {
                            "type": "object",
                            "description": "{field: {from, to}}",
                            "additionalProperties": _obj({"from": {}, "to": {}}),
                        },
                    }
                ),
            },
            "nextCursor": {"type": ["string", "null"]},
        }
    ),
    "IssueAccepted": _obj(
        {
            "couponId": UUID,
            "userId": UUID,
            "status": {"const": "PENDING"},
            "rank": {"type": "integer", "minimum": 1},
            "requestedAt": TIME,
        }
    ),
    "IssueStatus": _obj({"couponId": UUID, "userId": UUID, "status": _enum(IssueStatus)}),
    "StockEvent": _obj(
        {
            "couponId": UUID,
            "total": INT,
            "reserved": INT,
            "remaining": {"type": "integer", "minimum": 0},
            "status": _enum(StockStatus),
        }
    ),
    "Usage": _obj({"couponId": UUID, "userId": UUID, "used": {"const": True}, "usedAt": TIME}),
    "OwnedCoupon": _obj(
        {
            "couponId": UUID,
            "name": STR,
            "type": _enum(CouponType),
            "discountType": _enum(DiscountType),
            "discountValue": {"type": "number"},
            "issuedAt": TIME,
            "used": {"type": "boolean"},
            "usedAt": TIME_OR_NULL,
            "expiresAt": TIME,
            "rank": INT,
        }
    ),
    "Deleted": _obj({"id": UUID, "deleted": {"const": True}}),
    "Failures": _obj(
        {
            "counts": _obj({s.value: INT for s in FailureStatus}),
            "items": {
                "type": "array",
                "items": _obj(
                    {
                        "id": INT,
                        "couponId": STR,
                        "userId": STR,
                        "status": _enum(FailureStatus),
                        "retryCount": INT,
                        "resolved": {"type": "boolean"},
                        "error": STR,
                        "createdAt": TIME,
                        "lastRetriedAt": TIME_OR_NULL,
                        "resolvedAt": TIME_OR_NULL,
                    }
                ),
            },
        }
    ),
    "Health": _obj({"status": {"const": "UP"}}),
    "Readiness": _obj({"status": {"type": "string", "enum": ["UP", "DOWN"]}, "checks": {"type": "object"}}),
    "Credentials": {
        "type": "object",
        "properties": {
            "username": {"type": "string", "minLength": 1, "maxLength": 50},
            "password": {"type": "string", "minLength": 1, "maxLength": 128},
        },
        "required": ["username", "password"],
        "additionalProperties": False,
    },
    "Signup": {
        "type": "object",
        "properties": {
            "username": {"type": "string", "pattern": USERNAME_RE.pattern},
            "password": {"type": "string", "minLength": 8, "maxLength": 128},
        },
        "required": ["username", "password"],
        "additionalProperties": False,
    },
    "CouponDraft": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "type": _enum(CouponType),
            "discountType": _enum(DiscountType),
            "discountValue": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 10_000_000,
                "description": "at most two decimals; a PERCENTAGE at most 100",
            },
            "totalQuantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "issueStartsAt": {**TIME, "description": "default now; without an offset it means UTC"},
            "expiresAt": {**TIME, "description": "in the future and after issueStartsAt"},
        },
        "required": ["name", "type", "discountType", "discountValue", "totalQuantity", "expiresAt"],
        "additionalProperties": False,
        "examples": [
            {
                "name": "Black Friday pizza",
                "type": "PIZZA",
                "discountType": "FIXED",
                "discountValue": 3000,
                "totalQuantity": 100,
                "expiresAt": "2999-12-31T00:00:00Z",
            }
        ],
    },
}


def _success(data: Schema) -> Schema:
    return _obj({"resultType": {"const": "SUCCESS"}, "data": data, "errorMessage": {"type": "null"}})


def _error_schema(codes: list[str], data: Schema | None = None) -> Schema:
    return _obj(
        {
            "resultType": {"const": "ERROR"},
            "data": data or {"type": "null"},
            "errorMessage": _obj({"code": {"type": "string", "enum": codes}, "message": STR, "data": {}}),
        }
    )


def _json(schema: Schema, description: str, headers: dict[str, Any] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


# The codes whose reply carries Retry-After (the error's retry_after, coupon/http/error_handlers.py).
_WITH_RETRY_AFTER = {
    "E429": "seconds until the window resets",
    "E5031": "seconds until a lost gate can be rebuilt (sent only while it waits for what was in flight)",
    "E5035": "seconds until the hashing queue clears",
    "E5036": "seconds until the issue queue is expected to drain",
}

_SOMETIMES_RETRY_AFTER = {"E5031"}


def _retry_after(group: list[str]) -> dict[str, Any] | None:
    sent = [c for c in group if c in _WITH_RETRY_AFTER]
    if not sent:
        return None
    return {
        "Retry-After": {
            "description": f"{'; '.join(f'{c}: {_WITH_RETRY_AFTER[c]}' for c in sent)}",
            # Required only when every code of this status always sends it (a 503 E5033 never does, E5031 only
            # while a lost gate waits to be rebuilt).
            "required": len(sent) == len(group) and not (set(sent) & _SOMETIMES_RETRY_AFTER),
            "schema": {"type": "integer", "minimum": 1},
        }
    }


def _errors(codes: list[str]) -> dict[str, Schema]:
    """One response per HTTP status, listing exactly the codes that status can carry here."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(_ERRORS[code].status, []).append(code)
    out = {}
    for status, group in sorted(by_status.items()):
        text = "; ".join(f"{c} {_ERRORS[c].__name__}" for c in group)
        out[str(status)] = _json(_error_schema(sorted(group)), text, _retry_after(group))
    return out


def _op(
    endpoint: str,
    summary: str,
    ok: tuple[int, Schema],
    codes: list[str],
    *,
    auth: bool,
    body: str | None = None,
    tag: str = "coupons",
    params: list[Schema] | None = None,
) -> Schema:
    status, data = ok
    op: Schema = {
        "operationId": endpoint,
        "summary": summary,
        "tags": [tag],
        "responses": {str(status): _json(_success(data), summary), **_errors(codes)},
    }
    if auth:
        op["security"] = [{"bearer": []}]
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
        if any(p["in"] == "query" for p in params):
            # gunicorn refuses a request line over limit_request_line (4094 bytes) before the app sees it.
            op["responses"]["414"] = {
                "description": "URI Too Long: the HTTP server's own answer (not the envelope)",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
    return op


def _path_id(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": UUID}


COUPON_ID = [_path_id("coupon_id")]


def _page_params(bounds: tuple[int, int]) -> list[Schema]:
    default, maximum = bounds
    return [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "the nextCursor of the previous page (opaque)",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LENGTH, "pattern": "^[A-Za-z0-9_-]+$"},
        },
    ]


IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry a request with the same key (after a timeout or a 503 E5034) and get the same answer:"
    " the same 202 and rank while the reservation stands, never 409 duplicate.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,100}$"},
}
USER_ONLY = AUTH + LIMITED
ADMIN_ONLY = [*AUTH, "E1004", *LIMITED]


_STREAM_DESCRIPTION = """Server-Sent Events of the coupon's remaining stock, admitted (rate limit) once at connect.

Frames: `retry: <ms>` first; then one event per changed state, at most one per STOCK_STREAM_TICK_MS:
`id: <phase>.<reserved>.<total>.<status letter>`, `event: stock` | `sold-out` | `closed`, and `data:` a StockEvent
JSON object on one line. `sold-out` (remaining 0) and `closed` (status ENDED or DISABLED) are final: the server
ends the stream after them (and asks for `retry: 60000`; a client should close its EventSource). While nothing
changes a comment line `: keep-alive` comes every STOCK_STREAM_HEARTBEAT_SECONDS. A stream ends after at most
STOCK_STREAM_MAX_SECONDS, or when its server shuts down: reconnect with Last-Event-ID."""


def _stock_stream() -> Schema:
    op = _op(
        "coupons.stock_stream",
        "Live stock (Server-Sent Events)",
        (200, _ref("StockEvent")),
        ID + USER_ONLY + ["E3001", "E5031", "E5033"],
        auth=True,
        params=[
            *COUPON_ID,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "The id of the last event received: the current state is sent only if it changed"
                " since (the final event always is, again). A malformed id counts as none.",
                "schema": {"type": "string"},
            },
        ],
    )
    op["description"] = _STREAM_DESCRIPTION
    op["responses"]["200"] = {
        "description": "the event stream (text/event-stream); each event's data is a StockEvent",
        "headers": {
            "Cache-Control": {"schema": {"const": "no-cache"}},
            "X-Accel-Buffering": {"schema": {"const": "no"}, "description": "no buffering in nginx-like proxies"},
        },
        # OpenAPI 3.1 (before 3.2's itemSchema): the schema of an event stream describes each of its events.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["stock", "sold-out", "closed"]},
                        "id": {"type": "string", "pattern": "^[0-2]\\.[0-9]+\\.[0-9]+\\.[NASED]$"},
                        "retry": {"type": "integer", "minimum": 0},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": _ref("StockEvent"),
                        },
                    },
                    "required": ["event", "id", "data"],
                }
            }
        },
    }
    return op


@cache
def document() -> Schema:
    """The whole document (built once; the JSON served at /api/openapi.json)."""
    paths: dict[str, dict[str, Schema]] = {
        "/health": {
            "get": {
                "operationId": "health.live",
                "summary": "Liveness",
                "tags": ["health"],
                "responses": {"200": _json(_success(_ref("Health")), "the process answers")},
            }
        },
        "/health/ready": {
            "get": {
                "operationId": "health.ready",
                "summary": "Readiness of Redis, the database and Kafka",
                "tags": ["health"],
                "responses": {
                    "200": _json(_success(_ref("Readiness")), "every dependency answers"),
                    "503": _json(_error_schema(["E5030"], _ref("Readiness")), "E5030: a dependency is down"),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "docs.openapi",
                "summary": "This document",
                "tags": ["docs"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(LIMITED),
                },
            }
        },
        "/api/users/signup": {
            "post": _op(
                "users.signup",
                "Sign up",
                (201, _ref("User")),
                [*BODY, "E4006", "E2001", "E5033", "E5035", *LIMITED],
                auth=False,
                body="Signup",
                tag="users",
            )
        },
        "/api/users/{user_id}": {
            "delete": _op(
                "users.delete",
                "Delete an account (admin); its tokens are refused at once",
                (200, _ref("Deleted")),
                ID + ADMIN_ONLY + ["E2002", "E2003", "E5031", "E5033"],
                auth=True,
                tag="users",
                params=[_path_id("user_id")],
            )
        },
        "/api/auth/login": {
            "post": _op(
                "auth.login",
                "Log in for an access token",
                (200, _ref("Login")),
                [*BODY, "E4006", "E1005", "E5033", "E5035", *LIMITED],
                auth=False,
                body="Credentials",
                tag="auth",
            )
        },
        "/api/auth/refresh": {
            "post": _op(
                "auth.refresh",
                "Trade a refresh token (single use) for a new access token and refresh token",
                (200, _ref("Login")),
                [*BODY, "E4006", "E1007", "E1008", "E5033", *LIMITED],
                auth=False,
                body="RefreshRequest",
                tag="auth",
            )
        },
        "/api/auth/logout": {
            "post": _op(
                "auth.logout",
                "Revoke the refresh token's session and this access token",
                (200, _ref("LoggedOut")),
                [*BODY, "E4006", "E1007", *USER_ONLY, "E5031", "E5033"],
                auth=True,
                body="RefreshRequest",
                tag="auth",
            )
        },
        "/api/coupon": {
            "post": _op(
                "coupons.create",
                "Create a coupon (admin) and prime its gate",
                (201, _ref("Coupon")),
                [*BODY, "E4006", *ADMIN_ONLY, "E5031", "E5033"],
                auth=True,
                body="CouponDraft",
            ),
            "get": _op(
                "coupons.listing",
                "Coupons with their live stock, newest first (a USER sees only ACTIVE ones that are live or upcoming)",
                (200, _ref("CouponPage")),
                ["E4000", *USER_ONLY, "E5031", "E5033"],
                auth=True,
                params=[
                    {"name": "status", "in": "query", "required": False, "schema": _enum(CouponStatus)},
                    {"name": "phase", "in": "query", "required": False, "schema": _enum(CouponPhase)},
                    *_page_params(LISTING_LIMIT),
                ],
            ),
        },
        "/api/coupon/owned-coupons": {
            "get": _op(
                "coupons.owned",
                "My coupons, newest first",
                (200, {"type": "array", "items": _ref("OwnedCoupon")}),
                [*USER_ONLY, "E5033"],
                auth=True,
            )
        },
        "/api/coupon/{coupon_id}": {
            "get": _op(
                "coupons.detail",
                "A coupon with its live stock",
                (200, _ref("Coupon")),
                ID + USER_ONLY + ["E3001", "E5031", "E5033"],
                auth=True,
                params=COUPON_ID,
            ),
            "patch": _op(
                "coupons.update",
                "Change a coupon (admin): the kill switch, the issue window, the quantity, the name; the gate at once",
                (200, _ref("Coupon")),
                [*ID, *BODY, "E4006", *ADMIN_ONLY, "E3001", "E3010", "E5031", "E5033"],
                auth=True,
                body="CouponPatch",
                params=COUPON_ID,
            ),
        },
        "/api/coupon/{coupon_id}/issued": {
            "get": _op(
                "coupons.issued",
                "The winners ledger (admin), by rank",
                (200, _ref("LedgerPage")),
                [*ID, "E4000", *ADMIN_ONLY, "E3001", "E5033"],
                auth=True,
                params=[*COUPON_ID, *_page_params(LEDGER_LIMIT)],
            )
        },
        "/api/coupon/{coupon_id}/events": {
            "get": _op(
                "coupons.events",
                "Who changed what (admin), newest first",
                (200, _ref("EventsPage")),
                [*ID, "E4000", *ADMIN_ONLY, "E3001", "E5033"],
                auth=True,
                params=[*COUPON_ID, *_page_params(EVENTS_LIMIT)],
            )
        },
        "/api/coupon/{coupon_id}/issue": {
            "post": _op(
                "coupons.issue",
                "Request the coupon: 202 PENDING with the arrival rank",
                (202, _ref("IssueAccepted")),
                ID
                + USER_ONLY
                + ["E3001", "E3002", "E3003", "E3004", "E3005", "E3006", "E4007"]
                + ["E5031", "E5032", "E5033", "E5034", "E5036"],
                auth=True,
                params=[*COUPON_ID, IDEMPOTENCY_KEY],
            ),
            "get": _op(
                "coupons.issue_status",
                "My issue status",
                (200, _ref("IssueStatus")),
                ID + USER_ONLY + ["E3001", "E5031", "E5033"],
                auth=True,
                params=COUPON_ID,
            ),
        },
        "/api/coupon/{coupon_id}/stock/stream": {"get": _stock_stream()},
        "/api/coupon/{coupon_id}/usage": {
            "post": _op(
                "coupons.use",
                "Use my coupon (once)",
                (200, _ref("Usage")),
                ID + USER_ONLY + ["E3001", "E3007", "E3008", "E3009", "E5033"],
                auth=True,
                params=COUPON_ID,
            )
        },
        "/api/admin/failures": {
            "get": _op(
                "admin.failure_list",
                "Failure records of the issue pipeline (admin)",
                (200, _ref("Failures")),
                ["E4000", *ADMIN_ONLY, "E5033"],
                auth=True,
                tag="admin",
                params=[
                    {"name": "status", "in": "query", "required": False, "schema": _enum(FailureStatus)},
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 50},
                    },
                ],
            )
        },
    }
    created = paths["/api/coupon"]["post"]["responses"]["201"]
    created["links"] = {
        op: {"operationId": op, "parameters": {"coupon_id": "$response.body#/data/id"}}
        for op in (
            "coupons.detail",
            "coupons.issue",
            "coupons.issue_status",
            "coupons.use",
            "coupons.update",
            "coupons.issued",
            "coupons.events",
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "coupon rush",
            "version": "1.0.0",
            "description": "First-come-first-served coupon drops. Every response uses the envelope "
            "{resultType, data, errorMessage}; error codes are stable (docs/API.md: Error codes). "
            "404 E4004 / 405 E4005 answer unknown paths and methods.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }

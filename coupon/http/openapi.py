"""The API's OpenAPI 3.1 document, as data: every route, body, response and the error codes each can return.

The schemas of bodies, queries and replies come from the models of coupon/http/schemas (their limits are stated
there, once); this module adds the routes and which error codes each can answer. tests/integration/test_openapi.py
compares it with the app's url_map both ways and runs schemathesis against a live server with it. /metrics
(Prometheus text for the scraper) is deliberately left out.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from coupon.domain.errors import AppError, all_error_classes
from coupon.http.schemas.components import REF, component_schemas, query_parameters
from coupon.http.schemas.headers import IDEMPOTENCY_KEY
from coupon.http.schemas.queries import EventsParams, FailuresParams, LedgerParams, ListingParams

Schema = dict[str, Any]

_ERRORS: dict[str, type[AppError]] = {cls.code: cls for cls in all_error_classes()}

# Codes by situation, combined per operation below.
AUTH = ["E1001", "E1002", "E1003", "E1006", "E1009"]  # 401 on every route that needs a token
BODY = ["E4000", "E4001", "E4002"]  # 400 on every route that reads a JSON body
ID = ["E4003", "E4004"]  # {id} routes: 400 not a UUID; 404 when the raw value has a "/" (no route matches)
LIMITED = ["E429"]  # 429: per-address limit on every /api route, per-user on authenticated ones


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


UUID = {"type": "string", "format": "uuid"}


def _envelope(data: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"resultType": {"const": "SUCCESS"}, "data": data, "errorMessage": {"type": "null"}},
        "required": ["resultType", "data", "errorMessage"],
        "additionalProperties": False,
    }


# The success envelope of each kind of `data`: one component (<name>Reply) shared by the operations that answer it,
# so a generated client has one class per reply, not one per operation.
_REPLY_DATA: dict[str, Schema] = {
    name: _ref(name)
    for name in (
        "User",
        "Deleted",
        "Login",
        "LoggedOut",
        "Coupon",
        "CouponPage",
        "LedgerPage",
        "EventsPage",
        "IssueAccepted",
        "IssueState",
        "Usage",
        "Failures",
        "Health",
        "Readiness",
    )
} | {"OwnedCoupons": {"type": "array", "items": _ref("OwnedCoupon")}}


def _success(name: str) -> Schema:
    return _ref(f"{name}Reply")


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
    """One response per HTTP status, naming exactly the codes that status can carry here (its description and
    x-error-codes); the body is the one shared ErrorEnvelope, so a generated client has one error class."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(_ERRORS[code].status, []).append(code)
    out = {}
    for status, group in sorted(by_status.items()):
        text = "; ".join(f"{c} {_ERRORS[c].__name__}" for c in group)
        out[str(status)] = _json(_ref("ErrorEnvelope"), text, _retry_after(group)) | {"x-error-codes": sorted(group)}
    return out


def _op(
    endpoint: str,
    summary: str,
    ok: tuple[int, str],
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
        (200, "StockEvent"),
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
                "responses": {"200": _json(_success("Health"), "the process answers")},
            }
        },
        "/health/ready": {
            "get": {
                "operationId": "health.ready",
                "summary": "Readiness of Redis, the database and Kafka",
                "tags": ["health"],
                "responses": {
                    "200": _json(_success("Readiness"), "every dependency answers"),
                    "503": _json(_ref("NotReady"), "E5030: a dependency is down") | {"x-error-codes": ["E5030"]},
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
                        # Any JSON: the document's own shape is OpenAPI's (a generated client hands it over as parsed).
                        "content": {"application/json": {"schema": {}}},
                    },
                    **_errors(LIMITED),
                },
            }
        },
        "/api/users/signup": {
            "post": _op(
                "users.signup",
                "Sign up",
                (201, "User"),
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
                (200, "Deleted"),
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
                (200, "Login"),
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
                (200, "Login"),
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
                (200, "LoggedOut"),
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
                (201, "Coupon"),
                [*BODY, "E4006", *ADMIN_ONLY, "E5031", "E5033"],
                auth=True,
                body="CouponDraft",
            ),
            "get": _op(
                "coupons.listing",
                "Coupons with their live stock, newest first (a USER sees only ACTIVE ones that are live or upcoming)",
                (200, "CouponPage"),
                ["E4000", *USER_ONLY, "E5031", "E5033"],
                auth=True,
                params=query_parameters(ListingParams),
            ),
        },
        "/api/coupon/owned-coupons": {
            "get": _op(
                "coupons.owned",
                "My coupons, newest first",
                (200, "OwnedCoupons"),
                [*USER_ONLY, "E5033"],
                auth=True,
            )
        },
        "/api/coupon/{coupon_id}": {
            "get": _op(
                "coupons.detail",
                "A coupon with its live stock",
                (200, "Coupon"),
                ID + USER_ONLY + ["E3001", "E5031", "E5033"],
                auth=True,
                params=COUPON_ID,
            ),
            "patch": _op(
                "coupons.update",
                "Change a coupon (admin): the kill switch, the issue window, the quantity, the name; the gate at once",
                (200, "Coupon"),
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
                (200, "LedgerPage"),
                [*ID, "E4000", *ADMIN_ONLY, "E3001", "E5033"],
                auth=True,
                params=[*COUPON_ID, *query_parameters(LedgerParams)],
            )
        },
        "/api/coupon/{coupon_id}/events": {
            "get": _op(
                "coupons.events",
                "Who changed what (admin), newest first",
                (200, "EventsPage"),
                [*ID, "E4000", *ADMIN_ONLY, "E3001", "E5033"],
                auth=True,
                params=[*COUPON_ID, *query_parameters(EventsParams)],
            )
        },
        "/api/coupon/{coupon_id}/issue": {
            "post": _op(
                "coupons.issue",
                "Request the coupon: 202 PENDING with the arrival rank",
                (202, "IssueAccepted"),
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
                (200, "IssueState"),
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
                (200, "Usage"),
                ID + USER_ONLY + ["E3001", "E3007", "E3008", "E3009", "E5033"],
                auth=True,
                params=COUPON_ID,
            )
        },
        "/api/admin/failures": {
            "get": _op(
                "admin.failure_list",
                "Failure records of the issue pipeline (admin)",
                (200, "Failures"),
                ["E4000", *ADMIN_ONLY, "E5033"],
                auth=True,
                tag="admin",
                params=query_parameters(FailuresParams),
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
            "schemas": component_schemas() | {f"{name}Reply": _envelope(data) for name, data in _REPLY_DATA.items()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }

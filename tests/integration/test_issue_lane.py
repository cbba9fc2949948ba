"""The issue lane answers as Flask's issue route does: every case is sent once through the app as served (lane in
front) and once through Flask's dispatch alone, against real Redis, Kafka and MariaDB, and the replies must match in
status, headers and body (ids and times aside). The lane must also have taken the cases it claims, and left the rest."""

from __future__ import annotations

import contextvars
import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import redis
from werkzeug.test import Client, TestResponse

from coupon import resources
from coupon.http.issue_lane import IssueLane
from coupon.observability.instruments import HTTP_DURATION
from harness.client import coupon_body

VOLATILE = ("userId", "couponId", "requestedAt")


@pytest.fixture
def paths(app: Any) -> dict[str, Client]:
    lane = app.wsgi_app
    assert isinstance(lane, IssueLane), "create_app must put the issue lane in front of Flask"
    return {
        "lane": Client(_own_context(app, app), TestResponse),
        "flask": Client(_own_context(app, lane.downstream), TestResponse),
    }


def _own_context(app: Any, wsgi: Any) -> Any:
    """Each request in an app context and a contextvars context of its own, as under gunicorn (a greenlet per
    connection): the session's outer app context would let flask.g (the verified claims) carry over from one request
    to the next, and the request id bound would outlive the request in this test process."""

    def call(environ: dict[str, Any], start_response: Any) -> Any:
        def one() -> list[bytes]:
            with app.app_context():
                return list(wsgi(environ, start_response))

        return contextvars.copy_context().run(one)

    return call


def _coupon(client: Client, admin_token: str, quantity: int) -> str:
    reply = client.post("/api/coupon", json=coupon_body(quantity), headers={"Authorization": f"Bearer {admin_token}"})
    assert reply.status_code == 201, reply.get_data(as_text=True)
    coupon_id: str = reply.get_json()["data"]["id"]
    return coupon_id


def _issue(client: Client, coupon_id: str, token: str | None, **headers: str) -> TestResponse:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(f"/api/coupon/{coupon_id}/issue", headers=headers)


def _shape(reply: TestResponse) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body with what differs between two users or two moments taken out."""
    body = reply.get_json()
    assert reply.headers["Content-Length"] == str(len(reply.get_data())), "Content-Length must count the body"
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", reply.headers["X-Request-Id"])
    if isinstance(body.get("data"), dict):
        body["data"] = {k: ("…" if k in VOLATILE else v) for k, v in body["data"].items()}
    if isinstance(body.get("errorMessage"), dict) and isinstance(body["errorMessage"].get("data"), dict):
        body["errorMessage"]["data"] = dict.fromkeys(body["errorMessage"]["data"], "…")
    headers = {k: v for k, v in reply.headers.items() if k not in ("Content-Length", "X-Request-Id")}
    return reply.status_code, headers, body


def _both(paths: dict[str, Client], case: Callable[[str, Client], TestResponse]) -> dict[str, TestResponse]:
    """The case through each path (`name` picks that path's own coupon or user); their replies must match."""
    replies = {name: case(name, client) for name, client in paths.items()}
    assert _shape(replies["lane"]) == _shape(replies["flask"])
    return replies


def _accepted_count() -> float:
    """202s recorded under the issue route's endpoint so far, in this process."""
    return sum(bucket.get() for bucket in HTTP_DURATION.labels("POST", "coupons.issue", "202")._buckets)


def test_the_lane_answers_every_issue_case_as_flask_does(paths: dict[str, Client], admin_token, mint, rdb) -> None:
    users = iter(token for _, token in mint(14))
    coupons = {name: _coupon(client, admin_token, 1) for name, client in paths.items()}

    first = _both(paths, lambda name, c: _issue(c, coupons[name], next(users), **{"X-Request-Id": "trace-1"}))
    assert first["lane"].status_code == 202 and first["lane"].get_json()["data"]["rank"] == 1
    assert first["lane"].headers["X-Request-Id"] == first["flask"].headers["X-Request-Id"] == "trace-1"

    # The next user finds the single unit gone; a retry with a bad key is refused before the gate.
    sold_out = _both(paths, lambda name, c: _issue(c, coupons[name], next(users)))
    assert sold_out["lane"].status_code == 409
    bad_key = _both(paths, lambda name, c: _issue(c, coupons[name], next(users), **{"Idempotency-Key": "a b"}))
    assert bad_key["lane"].status_code == 400

    # The same user twice, and the same request again under its idempotency key.
    roomy = {name: _coupon(client, admin_token, 5) for name, client in paths.items()}
    twice = {name: next(users) for name in paths}
    for expected in (202, 409):
        again = _both(paths, lambda name, c: _issue(c, roomy[name], twice[name]))
        assert again["lane"].status_code == expected
    keyed = {name: next(users) for name in paths}
    for _ in range(2):
        replay = _both(paths, lambda name, c: _issue(c, roomy[name], keyed[name], **{"Idempotency-Key": "k-1"}))
        assert replay["lane"].status_code == 202 and replay["lane"].get_json()["data"]["rank"] == 2

    unknown = _both(paths, lambda _, c: _issue(c, str(uuid.uuid4()), next(users)))
    assert unknown["lane"].status_code == 404


def test_what_the_lane_does_not_take_reaches_flask_unchanged(
    paths: dict[str, Client], app: Any, admin_token, mint
) -> None:
    (user_id, token), (_, other) = mint(2)
    now = int(time.time())
    claims = {"sub": user_id, "role": "USER", "type": "access", "jti": "x", "iat": now - 120, "exp": now - 60}
    expired = jwt.encode(claims, resources.of(app).jwt_key, algorithm="HS256")
    coupon = _coupon(paths["lane"], admin_token, 10)
    before = _accepted_count()
    for token_sent, code in ((None, "E1001"), ("not-a-token", "E1002"), (expired, "E1003")):
        replies = _both(paths, lambda _, c, sent=token_sent: _issue(c, coupon, sent))
        assert replies["lane"].get_json()["errorMessage"]["code"] == code
    # A non-canonical id goes to the Flask view, which answers for the canonical one.
    upper = _issue(paths["lane"], coupon.upper(), other)
    assert upper.status_code == 202 and upper.get_json()["data"]["couponId"] == coupon
    assert _issue(paths["lane"], coupon, token).status_code == 202
    # Both 202s are counted under the route's endpoint, whichever path answered.
    assert _accepted_count() - before == 2


def _failing_issuer(app: Any, error: Exception) -> Any:
    class Failing:
        def submit(self, ticket: Any) -> Any:
            raise error

    return dataclasses.replace(resources.of(app), issuer=Failing())


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(redis.ConnectionError("gone"), 503, "E5031"), (RuntimeError("a bug"), 500, "E5000")],
)
def test_a_failure_inside_the_service_is_answered_alike(
    paths: dict[str, Client], app: Any, mint, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
) -> None:
    users = iter(token for _, token in mint(2))
    monkeypatch.setitem(app.extensions, "coupon", _failing_issuer(app, error))
    replies = _both(paths, lambda _, c: _issue(c, str(uuid.uuid4()), next(users)))
    assert replies["lane"].status_code == status
    assert replies["lane"].get_json()["errorMessage"]["code"] == code

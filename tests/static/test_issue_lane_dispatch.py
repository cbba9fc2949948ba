"""Which requests the issue lane takes and which it leaves to Flask, on the app as create_app builds it (no services:
a taken request meets an issuer that fails, so it is answered by the lane without reaching Redis or Kafka)."""

from __future__ import annotations

import contextvars
import dataclasses
import uuid
from typing import Any

import pytest
from flask_jwt_extended import create_access_token

from coupon import create_app, resources
from coupon.http.issue_lane import IssueLane

COUPON = "7d0b9c1e-3f4a-4b5c-9d6e-1f2a3b4c5d6e"  # fixed: xdist workers must collect the same test ids


class _Failing:
    def submit(self, ticket: Any) -> Any:
        raise RuntimeError("the lane took this request")


@pytest.fixture(scope="module")
def lane() -> Any:
    app = create_app({"APP_ENV": "test"})
    app.extensions["coupon"] = dataclasses.replace(resources.of(app), issuer=_Failing())
    lane = app.wsgi_app
    assert isinstance(lane, IssueLane)
    with app.app_context():
        lane.token = create_access_token(identity=str(uuid.uuid4()), additional_claims={"role": "USER"})
    return lane


def _send(lane: Any, method: str, path: str, token: str | None) -> str:
    """'flask' when the lane passed the request on, else the status line it answered with."""
    passed: list[str] = []
    downstream, lane.downstream = lane.downstream, lambda environ, start: passed.append("flask") or [b""]
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1"}
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    statuses: list[str] = []
    try:
        # A context of its own, as each gunicorn greenlet has: the request id the lane binds must not outlive the call.
        contextvars.copy_context().run(lane, environ, lambda status, headers: statuses.append(status))
    finally:
        lane.downstream = downstream
    return passed[0] if passed else statuses[0]


def test_a_post_to_a_canonical_coupon_id_with_a_valid_token_is_taken(lane: Any) -> None:
    assert _send(lane, "POST", f"/api/coupon/{COUPON}/issue", lane.token) == "500 INTERNAL SERVER ERROR"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/coupon/{COUPON}/issue"),  # the status route
        ("HEAD", f"/api/coupon/{COUPON}/issue"),
        ("POST", f"/api/coupon/{COUPON.upper()}/issue"),  # not canonical: the view normalises it
        ("POST", f"/api/coupon/{COUPON}/issue/"),
        ("POST", f"/api/coupon/{COUPON}/issued"),
        ("POST", f"/api/coupon/{COUPON[:-1]}x/issue"),
        ("POST", f"/api/coupons/{COUPON}/issue"),
        ("POST", f"/api/coupon/{COUPON}"),
        ("POST", "/health"),
    ],
)
def test_other_routes_and_shapes_go_to_flask(lane: Any, method: str, path: str) -> None:
    assert _send(lane, method, path, lane.token) == "flask"


@pytest.mark.parametrize("token", [None, "", "abc.def.ghi"])
def test_a_missing_or_bad_token_goes_to_flask(lane: Any, token: str | None) -> None:
    assert _send(lane, "POST", f"/api/coupon/{COUPON}/issue", token) == "flask"

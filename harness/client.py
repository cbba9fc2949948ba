"""A thin HTTP client for the API under test, and the burst runner."""

from __future__ import annotations

import atexit
import contextlib
import json
import select
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from harness.processes import ROOT


class Api:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def signup(self, username: str | None = None, password: str = "password-123") -> dict[str, Any]:
        username = username or f"u{uuid.uuid4().hex[:12]}"
        resp = self.call("POST", "/api/users/signup", json={"username": username, "password": password})
        assert resp.status_code == 201, resp.text
        return resp.json()["data"]

    def login(self, username: str, password: str) -> str:
        resp = self.call("POST", "/api/auth/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]["accessToken"]

    def user_token(self) -> tuple[str, str]:
        """A fresh user: (id, token)."""
        user = self.signup()
        return user["id"], self.login(user["username"], "password-123")

    def create_coupon(self, admin_token: str, quantity: int, **fields: Any) -> dict[str, Any]:
        body = coupon_body(quantity, **fields)
        resp = self.call("POST", "/api/coupon", admin_token, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()["data"]

    def patch_coupon(self, admin_token: str, coupon_id: str, **fields: Any) -> dict[str, Any]:
        """PATCH /api/coupon/{id} with `fields` as the body; asserts 200 and returns the coupon."""
        resp = self.call("PATCH", f"/api/coupon/{coupon_id}", admin_token, json=fields)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def pages(self, token: str, path: str, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of a cursor-paginated list, following nextCursor until it is null."""
        out: list[list[dict[str, Any]]] = []
        cursor = None
        while True:
            query = dict(params, **({"cursor": cursor} if cursor else {}))
            resp = self.call("GET", path, token, params=query)
            assert resp.status_code == 200, resp.text
            data = resp.json()["data"]
            out.append(data["items"])
            cursor = data["nextCursor"]
            if cursor is None:
                return out


def iso_in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def coupon_body(quantity: int = 10, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Black Friday chicken",
        "type": "CHICKEN",
        "discountType": "FIXED",
        "discountValue": 3000,
        "totalQuantity": quantity,
        "expiresAt": iso_in(days=1),
    }
    body.update(fields)
    return body


class _BurstHelper:
    """A `python -m harness.burst` process: one burst per line in, one reply per line out."""

    def __init__(self) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed with the helper)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.burst"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            cwd=ROOT,
        )

    def fire(self, spec: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(spec + "\n")
        self.proc.stdin.flush()
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else ""
        if not line:
            what = "exited" if readable else f"gave no answer within {timeout} s"
            self.errors.seek(0)
            errors = self.errors.read().decode(errors="replace")[-3000:]
            self.close()
            raise AssertionError(f"the burst helper {what}:\n{errors}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errors.close()


# Idle helpers of this process, taken one per burst: bursts fired side by side (threads) get a process each, as
# before, and a helper that failed is not put back.
_idle_helpers: list[_BurstHelper] = []
_helpers_lock = threading.Lock()


@atexit.register
def _close_helpers() -> None:
    with _helpers_lock:
        while _idle_helpers:
            _idle_helpers.pop().close()


def burst(base_url: str, reqs: list[tuple[Any, ...]], timing: dict[str, float] | None = None) -> list[list[Any]]:
    """Fire every request at once from a separate gevent process; [status, code, data, ms] each.

    A request is (method, path, token) or (method, path, token, base_url) to send it to another server.

    `timing`, when given, receives the epoch seconds the requests were fired at and the last reply came in.
    """
    with _helpers_lock:
        helper = _idle_helpers.pop() if _idle_helpers else None
    if helper is not None and helper.proc.poll() is not None:
        helper.close()
        helper = None
    helper = helper or _BurstHelper()
    reply = helper.fire(json.dumps({"base": base_url, "requests": reqs}), timeout=300)
    with _helpers_lock:
        _idle_helpers.append(helper)
    if timing is not None:
        timing.update(fired=reply["fired"], done=reply["done"])
    results: list[list[Any]] = reply["results"]
    return results

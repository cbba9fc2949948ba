"""No secret reaches the logs: passwords, access tokens and the signing key stay out of the API's output,
also at DEBUG level with the access log on and while requests fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from coupon.settings import DEV_JWT_SECRET
from harness.client import Api
from harness.processes import Stack


@pytest.mark.slow
def test_passwords_tokens_and_keys_never_reach_the_log(
    base_env: dict[str, str], migrated_db: str, tmp_path: Path
) -> None:
    stack = Stack(dict(base_env, LOG_LEVEL="DEBUG", ACCESS_LOG="-", LOGIN_MAX_ATTEMPTS="2"), tmp_path)
    try:
        api = Api(stack.start_api(workers=1))
        password = "Pw-9f3a1c7e5b2d-unique"
        user = api.signup("log-watcher", password)
        token = api.login("log-watcher", password)
        api.call("GET", "/api/coupon/owned-coupons", token)
        api.call("GET", "/api/coupon/not-a-uuid", token)  # 400
        api.call("GET", "/api/coupon/owned-coupons", token[:-4] + "AAAA")  # tampered: 401
        for _ in range(3):  # wrong passwords, then 429
            api.call("POST", "/api/auth/login", json={"username": "log-watcher", "password": password + "-wrong"})
        api.call("POST", "/api/users/signup", json={"username": "x", "password": password})  # 400 names fields only
        log = "".join(p.log() for p in stack.procs)
    finally:
        stack.stop()
    assert "/api/auth/login" in log and user["id"]  # the access log did record the requests
    for secret in (password, token, token.split(".")[2], DEV_JWT_SECRET):
        assert secret not in log, f"a secret leaked into the log: {secret[:12]}…"

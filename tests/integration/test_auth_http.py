"""Sign-up, login and token handling over real HTTP against the real DB."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt as pyjwt
import pytest

from coupon.settings import DEV_JWT_SECRET
from harness.client import Api


def test_signup_then_login_round_trip(server: Api) -> None:
    user = server.signup("alice.kim", "correct-horse")
    assert user["username"] == "alice.kim" and user["role"] == "USER"
    resp = server.call("POST", "/api/auth/login", json={"username": "alice.kim", "password": "correct-horse"})
    body = resp.json()
    assert resp.status_code == 200 and body["resultType"] == "SUCCESS" and body["errorMessage"] is None
    assert body["data"]["id"] == user["id"] and body["data"]["expiresIn"] > 0
    claims = pyjwt.decode(body["data"]["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == user["id"] and claims["role"] == "USER" and claims["exp"] > time.time()


def test_wrong_password_and_unknown_user_are_401(server: Api) -> None:
    server.signup("bob-lee", "right-password")
    for creds in ({"username": "bob-lee", "password": "wrong-password"}, {"username": "nobody", "password": "x" * 9}):
        resp = server.call("POST", "/api/auth/login", json=creds)
        assert resp.status_code == 401
        assert resp.json()["errorMessage"]["code"] == "E1005"


def test_password_is_stored_as_slow_hash(server: Api, engine) -> None:
    from harness.invariants import scalar

    server.signup("carol", "plain-text-pw")
    stored = scalar(engine, "SELECT password_hash FROM users WHERE username = 'carol'")
    assert "plain-text-pw" not in stored and stored.startswith("scrypt:")


def test_duplicate_username_is_409(server: Api) -> None:
    server.signup("dave", "password-1")
    resp = server.call("POST", "/api/users/signup", json={"username": "dave", "password": "password-2"})
    assert resp.status_code == 409 and resp.json()["errorMessage"]["code"] == "E2001"


@pytest.mark.slow
def test_concurrent_signups_of_one_name_exactly_one_wins(server: Api, engine) -> None:
    from harness.invariants import scalar

    def attempt(i: int) -> int:
        return (
            Api(server.base)
            .call("POST", "/api/users/signup", json={"username": "racer", "password": f"password-{i}"})
            .status_code
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(attempt, range(20)))
    assert sorted(codes) == [201] + [409] * 19
    assert scalar(engine, "SELECT COUNT(*) FROM users WHERE username = 'racer'") == 1


def _bearer(server: Api, token: str) -> int:
    resp = server.call("GET", "/api/coupon/owned-coupons", token)
    return resp.status_code, resp.json()["errorMessage"]["code"] if resp.status_code != 200 else None


def test_missing_and_garbage_tokens_are_401(server: Api) -> None:
    assert server.call("GET", "/api/coupon/owned-coupons").json()["errorMessage"]["code"] == "E1001"
    assert _bearer(server, "not-a-jwt") == (401, "E1002")


def test_tampered_token_is_refused(server: Api) -> None:
    _, token = server.user_token()
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _bearer(server, f"{header}.{forged}.{sig}") == (401, "E1002")
    unsigned = pyjwt.encode(claims, key=None, algorithm="none")
    assert _bearer(server, unsigned) == (401, "E1002")
    wrong_key = pyjwt.encode(claims, "another-secret-of-sufficient-length-123", algorithm="HS256")
    assert _bearer(server, wrong_key) == (401, "E1002")


def test_expired_token_is_refused(server: Api) -> None:
    user_id, _ = server.user_token()
    now = int(time.time())
    expired = pyjwt.encode(
        {
            "sub": user_id,
            "role": "USER",
            "type": "access",
            "fresh": False,
            "jti": "x",
            "iat": now - 120,
            "nbf": now - 120,
            "exp": now - 60,
        },
        DEV_JWT_SECRET,
        algorithm="HS256",
    )
    assert _bearer(server, expired) == (401, "E1003")


def test_user_with_valid_token_sees_empty_wallet(server: Api) -> None:
    _, token = server.user_token()
    resp = server.call("GET", "/api/coupon/owned-coupons", token)
    assert resp.status_code == 200 and resp.json()["data"] == []


def test_only_the_canonical_spelling_of_a_token_is_accepted(server: Api) -> None:
    _, token = server.user_token()
    assert _bearer(server, token) == (200, None)
    header, payload, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]  # same bytes: only the spare bits differ
    variants = [
        f"{token}!!",
        f"{token}=",
        f"{header}.{payload}.{twin}",
        f"{header}.{payload}=.{sig}",
        f"{header}.{payload}.{sig.replace('-', '+').replace('_', '/')}",
    ]
    for variant in {v for v in variants if v != token}:
        assert _bearer(server, variant) == (401, "E1002"), variant

"""The hot-path token verifier agrees with PyJWT on good tokens and refuses everything else."""
from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest

from coupon.tokens import TokenExpiredError, TokenInvalid, verify_access_token

SECRET = b"unit-test-secret-of-a-decent-length-0123456789-0123456789-abcdef"


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": "user-1", "role": "USER", "type": "access", "fresh": False, "jti": "j",
                               "iat": now, "nbf": now, "exp": now + 60}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def mint(payload: dict[str, object], key: bytes = SECRET, alg: str = "HS256") -> str:
    return pyjwt.encode(payload, key, algorithm=alg)


def test_a_good_token_gives_its_claims() -> None:
    token = mint(claims(sub="abc", role="ADMIN"))
    got = verify_access_token(token, SECRET)
    assert got["sub"] == "abc" and got["role"] == "ADMIN"


def test_expired_token() -> None:
    with pytest.raises(TokenExpiredError):
        verify_access_token(mint(claims(exp=int(time.time()) - 1)), SECRET)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint(claims(), key=b"another-secret-that-is-long-enough-000000"), id="wrong key"),
        pytest.param(mint(claims(), alg="HS512"), id="other algorithm"),
        pytest.param(pyjwt.encode(claims(), key=None, algorithm="none"), id="alg none"),
        pytest.param(mint(claims(type="refresh")), id="refresh token"),
        pytest.param(mint(claims(exp=None)), id="no exp"),
        pytest.param(mint(claims(iat=None)), id="no iat"),
        pytest.param(mint(claims(sub=None)), id="no sub"),
        pytest.param(mint(claims(sub=42)), id="numeric sub"),
        pytest.param(mint(claims(nbf=int(time.time()) + 600)), id="not yet valid"),
        pytest.param("a.b", id="two parts"),
        pytest.param("!!!.???.***", id="garbage"),
        pytest.param("é" * 10, id="non-ascii"),
        pytest.param("x" * 5000, id="huge"),
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verify_access_token(token, SECRET)


def test_tampered_payload_is_refused() -> None:
    header, payload, sig = mint(claims()).split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["role"] = "ADMIN"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        verify_access_token(f"{header}.{forged}.{sig}", SECRET)

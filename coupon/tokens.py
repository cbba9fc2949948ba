"""Access-token verification for the hot path: HS256 only (algorithm pinned), constant-time signature check,
exp/iat/sub/type required. flask-jwt-extended mints the tokens; this reads them at a fraction of the cost."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

import orjson

# The only header the service ever issues (flask-jwt-extended with JWT_ALGORITHM=HS256).
_ALLOWED_HEADERS = ({"alg": "HS256", "typ": "JWT"},)
LEEWAY_S = 0
_KNOWN_GOOD_HEADERS: set[str] = set()


class TokenInvalid(Exception):
    pass


class TokenExpiredError(TokenInvalid):
    pass


def _b64(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("bad base64") from None


def verify_access_token(token: str, secret: bytes, now: float | None = None) -> dict[str, Any]:
    """Return the claims of a valid, unexpired access token; TokenInvalid/TokenExpiredError otherwise."""
    if not token.isascii() or len(token) > 4096:
        raise TokenInvalid("not a token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("not a JWT")
    header_b64, payload_b64, signature_b64 = parts
    if header_b64 not in _KNOWN_GOOD_HEADERS:
        try:
            header = orjson.loads(_b64(header_b64))
        except orjson.JSONDecodeError:
            raise TokenInvalid("bad header") from None
        if header not in _ALLOWED_HEADERS:
            raise TokenInvalid("algorithm not allowed")
        if len(_KNOWN_GOOD_HEADERS) < 16:
            # The same segment always decodes to the same allowed header: later tokens skip the decode.
            _KNOWN_GOOD_HEADERS.add(header_b64)
    expected = hmac.new(secret, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64(signature_b64)):
        raise TokenInvalid("bad signature")
    try:
        claims = orjson.loads(_b64(payload_b64))
    except orjson.JSONDecodeError:
        raise TokenInvalid("bad payload") from None
    if not isinstance(claims, dict):
        raise TokenInvalid("bad payload")
    exp, iat, sub = claims.get("exp"), claims.get("iat"), claims.get("sub")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not isinstance(iat, (int, float)):
        raise TokenInvalid("exp and iat are required")
    if not isinstance(sub, str) or not sub or claims.get("type") != "access":
        raise TokenInvalid("not an access token")
    nbf = claims.get("nbf")
    current = time.time() if now is None else now
    if exp <= current - LEEWAY_S:
        raise TokenExpiredError("expired")
    if isinstance(nbf, (int, float)) and nbf > current + LEEWAY_S:
        raise TokenInvalid("not valid yet")
    return claims

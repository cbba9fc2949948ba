"""Access-token verification for the hot path: HS256 only (algorithm pinned), constant-time signature check,
exp/iat/sub/jti/type required, every segment in canonical base64url. flask-jwt-extended mints the tokens; this
reads them at a fraction of the cost."""

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
    """Decode canonical unpadded base64url only. Python's decoder skips characters outside the alphabet and
    ignores non-zero trailing bits, so one token would have many spellings; re-encoding must give the segment back.
    """
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("bad base64") from None
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment.encode():
        raise TokenInvalid("not canonical base64url")
    return decoded


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value; None for another scheme or nothing after it.

    Blanks alone after the scheme are a (bad) token, not a missing one: the caller answers invalid, not missing."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme == "Bearer" and token else None


def bearer_claims(authorization: str, secret: bytes) -> dict[str, Any] | None:
    """The claims of a valid bearer access token in an Authorization header value; None when there is none or it is
    bad or expired (a guard, not this, says which)."""
    token = bearer_token(authorization)
    if token is None:
        return None
    try:
        return verify_access_token(token, secret)
    except TokenInvalid:
        return None


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
    # Compared as text against the canonical encoding of the expected MAC: a signature spelled any other way
    # (trailing bits, '+' or '/', padding, extra characters) is refused, and no decode is needed.
    if not hmac.compare_digest(base64.urlsafe_b64encode(expected).rstrip(b"="), signature_b64.encode()):
        raise TokenInvalid("bad signature")
    try:
        claims = orjson.loads(_b64(payload_b64))
    except orjson.JSONDecodeError:
        raise TokenInvalid("bad payload") from None
    if not isinstance(claims, dict):
        raise TokenInvalid("bad payload")
    exp, iat, sub, jti = claims.get("exp"), claims.get("iat"), claims.get("sub"), claims.get("jti")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not isinstance(iat, (int, float)):
        raise TokenInvalid("exp and iat are required")
    if not isinstance(sub, str) or not sub or claims.get("type") != "access":
        raise TokenInvalid("not an access token")
    # The jti names the token in its revocation marker (logout); every token flask-jwt-extended mints has one.
    if not isinstance(jti, str) or not 0 < len(jti) <= 64:
        raise TokenInvalid("jti is required")
    nbf = claims.get("nbf")
    current = time.time() if now is None else now
    if exp <= current - LEEWAY_S:
        raise TokenExpiredError("expired")
    if isinstance(nbf, (int, float)) and nbf > current + LEEWAY_S:
        raise TokenInvalid("not valid yet")
    return claims

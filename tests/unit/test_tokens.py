"""The hot-path token verifier agrees with PyJWT on good tokens and refuses everything else."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from coupon.http.access_tokens import TokenExpiredError, TokenInvalid, bearer_token, verify_access_token

SECRET = b"unit-test-secret-of-a-decent-length-0123456789-0123456789-abcdef"


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "user-1",
        "role": "USER",
        "type": "access",
        "fresh": False,
        "jti": "j",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
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


def _flip_plus_slash(segment: str) -> str:
    """The same bytes spelled with the standard alphabet ('+', '/') where base64url has '-', '_'."""
    return segment.replace("-", "+").replace("_", "/")


def _token_with_alphabet_chars(char: str) -> str:
    """A good token whose signature contains `char` (a '-' or '_'), found by varying the jti."""
    for n in range(10_000):
        token = mint(claims(jti=f"j{n}"))
        if char in token.split(".")[2]:
            return token
    raise AssertionError(f"no signature with {char!r}")


def _with_trailing_bits(segment: str) -> str:
    """The same bytes with the unused low bits of the last character set: Python decodes both alike."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {0: 0, 2: 15, 3: 3}[len(segment) % 4]  # 2 chars → 4 spare bits, 3 chars → 2, a full quad none
    last = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[last | unused]


@pytest.mark.parametrize("part", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s + "=", id="padding"),
        pytest.param(lambda s: s + "==", id="double padding"),
        pytest.param(lambda s: s + "!", id="trailing garbage"),
        pytest.param(lambda s: s + "!!", id="trailing garbage that fakes padding"),
        pytest.param(lambda s: s + "==!", id="padding and garbage"),
        pytest.param(lambda s: s + "A", id="trailing alphabet char"),
        pytest.param(lambda s: s[:5] + "\n" + s[5:], id="newline inside"),
        pytest.param(lambda s: s[:5] + "*" + s[5:], id="junk inside"),
        pytest.param(_with_trailing_bits, id="non-zero trailing bits"),
    ],
)
def test_non_canonical_spellings_of_a_segment_are_refused(part: int, variant) -> None:
    parts = mint(claims()).split(".")
    changed = variant(parts[part])
    # The header's length is a multiple of 3 bytes, so it has no spare bits to set: that variant is the segment
    # itself, and a canonical token must pass.
    if changed == parts[part]:
        assert verify_access_token(".".join(parts), SECRET)
        return
    parts[part] = changed
    with pytest.raises(TokenInvalid):
        verify_access_token(".".join(parts), SECRET)


@pytest.mark.parametrize("char", ["-", "_"])
def test_plus_and_slash_in_place_of_dash_and_underscore_are_refused(char: str) -> None:
    token = _token_with_alphabet_chars(char)
    verify_access_token(token, SECRET)  # the canonical spelling is good
    header, payload, sig = token.split(".")
    with pytest.raises(TokenInvalid):
        verify_access_token(f"{header}.{payload}.{_flip_plus_slash(sig)}", SECRET)


def test_the_variants_decode_alike_so_only_the_canonical_check_refuses_them() -> None:
    # Guards the tests above: each variant really is a second spelling Python's decoder would accept.
    sig = mint(claims()).split(".")[2]
    raw = base64.urlsafe_b64decode(sig + "=")
    assert base64.urlsafe_b64decode(sig + "=" + "!") == raw
    if _with_trailing_bits(sig) != sig:
        assert base64.urlsafe_b64decode(_with_trailing_bits(sig) + "=") == raw


def test_a_token_without_jti_is_refused() -> None:
    with pytest.raises(TokenInvalid):
        verify_access_token(mint(claims(jti=None)), SECRET)


_GOOD = mint(claims(exp=4_000_000_000))
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A last character that differs only in the signature's two spare bits: the rare case random search may miss.
_SPARE_BIT_TWIN = _ALPHABET[_ALPHABET.index(_GOOD[-1]) ^ 1]


@settings(max_examples=500, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(_GOOD) - 1),
    replacement=st.characters(min_codepoint=0, max_codepoint=0x2FF),
)
@example(position=len(_GOOD) - 1, replacement=_SPARE_BIT_TWIN)
@example(position=len(_GOOD) - 1, replacement="+")
def test_any_single_changed_character_is_refused(position: int, replacement: str) -> None:
    assume(replacement != _GOOD[position])
    token = _GOOD[:position] + replacement + _GOOD[position + 1 :]
    with pytest.raises(TokenInvalid):
        verify_access_token(token, SECRET)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("Bearer  abc ", "abc"),
        ("Bearer   ", ""),  # blanks are a bad token (answered invalid), not a missing one
        ("Bearer", None),
        ("Bearer ", None),
        ("bearer abc", None),
        ("Basic dXNlcjpwdw==", None),
        ("", None),
    ],
)
def test_the_bearer_header_is_read_one_way_for_admission_and_guards(header: str, token: str | None) -> None:
    assert bearer_token(header) == token

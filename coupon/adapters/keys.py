"""Every Redis key the service writes. All keys of one coupon share the hash tag {<coupon id>}."""

from __future__ import annotations


def _tag(coupon_id: str) -> str:
    return "coupon:{" + coupon_id + "}"


def meta(coupon_id: str) -> str:
    return _tag(coupon_id) + ":meta"


def issued(coupon_id: str) -> str:
    return _tag(coupon_id) + ":issued"


def participants(coupon_id: str) -> str:
    return _tag(coupon_id) + ":participants"


def holds(coupon_id: str) -> str:
    return _tag(coupon_id) + ":holds"


def unconfirmed(coupon_id: str) -> str:
    return _tag(coupon_id) + ":unconfirmed"


def rebuild_lock(coupon_id: str) -> str:
    return _tag(coupon_id) + ":rebuild-lock"


def lost(coupon_id: str) -> str:
    """When (Redis time, ms) a request first found the gate missing: the rebuild waits out what was in flight then."""
    return _tag(coupon_id) + ":lost"


def pair_lock(coupon_id: str, user_id: str) -> str:
    return _tag(coupon_id) + ":lock:" + user_id


def gate_keys(coupon_id: str) -> list[str]:
    """KEYS of reserve.lua, in its order."""
    return [meta(coupon_id), issued(coupon_id), participants(coupon_id), holds(coupon_id), unconfirmed(coupon_id)]


def meta_keys(coupon_id: str) -> list[str]:
    """KEYS of update_meta.lua, in its order."""
    return [meta(coupon_id), issued(coupon_id)]


def loss_keys(coupon_id: str) -> list[str]:
    """KEYS of mark_lost.lua, in its order."""
    return [meta(coupon_id), lost(coupon_id)]


def state_keys(coupon_id: str) -> list[str]:
    """Every key of a coupon's gate state: what a rebuild replaces and a retirement deletes."""
    return [*gate_keys(coupon_id), lost(coupon_id)]


def hold_keys(coupon_id: str) -> list[str]:
    """KEYS of release.lua, in its order."""
    return [issued(coupon_id), participants(coupon_id), holds(coupon_id), unconfirmed(coupon_id), meta(coupon_id)]


# Rate limiting: each counter and its marker share ONE hash tag, so a rate_limit.lua group stays in one
# Redis Cluster slot (lua.run_grouped packs the groups of one slot into one call).
def rl_user(user_id: str) -> str:
    return "rl:{user:" + user_id + "}:requests"


def user_deleted(user_id: str) -> str:
    """Marker of a deleted account; shares the user's tag so the limiter checks it in the same call."""
    return "rl:{user:" + user_id + "}:deleted"


def token_revoked(user_id: str, jti: str) -> str:
    """Marker of a logged-out access token (its jti); the user's tag, so the limiter checks it in the same call."""
    return "rl:{user:" + user_id + "}:revoked:" + jti


def rl_address(address: str) -> str:
    return "rl:{ip:" + address + "}:requests"


def address_blocked(address: str) -> str:
    """The address counter's marker in rate_limit.lua (same tag); nothing writes it today."""
    return "rl:{ip:" + address + "}:blocked"


def rl_login(username_digest: str) -> str:
    return "rl:{login:" + username_digest + "}:attempts"


def login_blocked(username_digest: str) -> str:
    """The login counter's marker in rate_limit.lua (same tag); nothing writes it today."""
    return "rl:{login:" + username_digest + "}:blocked"

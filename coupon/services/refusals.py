"""What a rate limiter's verdict means for a request: nothing, or the error that refuses it."""

from __future__ import annotations

from coupon.adapters.rate_limit import LimitDecision, LimitOutcome
from coupon.domain.errors import AccountDeleted, AppError, RateLimited, TokenRevoked


def refusal(decision: LimitDecision) -> AppError | None:
    """None when the request may go on; otherwise the 429 or 401 (deleted account, revoked token) that answers it."""
    if decision.outcome is LimitOutcome.LIMITED:
        return RateLimited(retry_after=decision.retry_after_s)
    if decision.outcome is LimitOutcome.ACCOUNT_DELETED:
        return AccountDeleted()
    if decision.outcome is LimitOutcome.TOKEN_REVOKED:
        return TokenRevoked()
    return None

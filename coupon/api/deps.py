"""The process-wide collaborators the views hand to services (built once per worker in init_app)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from coupon.adapters.gate import Gate
from coupon.adapters.hasher import PasswordHasher
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.rate_limit import RateLimiter
from coupon.extensions import db
from coupon.services.issuing import IssueBatcher


def session() -> Session:
    return db.session


def gate() -> Gate:
    return current_app.extensions["coupon.gate"]


def publisher() -> IssuePublisher:
    return current_app.extensions["coupon.publisher"]


def issuer() -> IssueBatcher:
    return current_app.extensions["coupon.issuer"]


def limiter() -> RateLimiter:
    return current_app.extensions["coupon.limiter"]


def hasher() -> PasswordHasher:
    return current_app.extensions["coupon.hasher"]

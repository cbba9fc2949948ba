"""A diagnostic WSGI app for bench/bound.py: the real app, with the issue batch decided by a no-op.

Every issue request still goes through gunicorn, the hooks, token verification, routing, the view, the service
and the coalescer hand-off; only the batch's Redis and Kafka work is skipped (every request is accepted, nothing
is stored). What it measures is the ceiling the issue route could reach if Redis and Kafka cost nothing.
Never deploy it.
"""

from coupon import (
    create_app,
    resources,
)
from coupon.adapters.gate import GateDecision, GateOutcome

app = create_app()
_ACCEPTED = GateDecision(GateOutcome.ACCEPTED, 1)
resources.of(app).issuer._flush = lambda tickets: [_ACCEPTED] * len(tickets)

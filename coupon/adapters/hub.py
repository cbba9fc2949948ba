"""Whether this process runs on a gevent hub: the gunicorn workers are monkey-patched; the CLI, rq and tests are not."""

from __future__ import annotations


def gevent_active() -> bool:
    """True in a monkey-patched process, where blocking work must leave the hub (threads) or yield to it."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))

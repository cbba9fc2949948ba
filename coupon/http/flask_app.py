"""The Flask class of this app: Flask, with the one per-request cost that has a fixed answer remembered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class CouponFlask(Flask):
    """Flask asks `inspect` whether each hook and view is a coroutine function on every call (seven times for a
    plain request here: bench/RESULTS.md); the answer for a given function never changes, so it is kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = self._sync[func] = super().ensure_sync(func)
            return sync

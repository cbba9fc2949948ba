"""Reading request bodies strictly: size-capped, JSON objects only."""
from __future__ import annotations

from typing import Any

import orjson
from flask import request

from coupon.errors import MalformedJson


def json_body() -> Any:
    # get_data honours MAX_CONTENT_LENGTH (413 → the BodyTooLarge envelope).
    raw = request.get_data(cache=False)
    if not raw:
        raise MalformedJson("The request body is empty; a JSON object is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedJson() from None

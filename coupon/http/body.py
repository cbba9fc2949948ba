"""Reading request bodies strictly: size-capped, Content-Type application/json, valid UTF-8 JSON objects only
(orjson refuses invalid UTF-8, lone surrogates, NaN/Infinity, numbers overflowing a double, nesting over 1024)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from coupon.domain.errors import MalformedJson, UnsupportedMediaType


def json_body() -> Any:
    # get_data honours MAX_CONTENT_LENGTH (413 → the BodyTooLarge envelope).
    raw = request.get_data(cache=False)
    if not raw:
        raise MalformedJson("The request body is empty; a JSON object is required")
    # Strict media type: a form or text body is refused rather than guessed at (415 E4006).
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedJson() from None

"""Server-Sent Events on the wire (text/event-stream): the live-stock stream's frames and its response.

    retry: 2000                       first, once: the reconnection delay
    id: 1.137.500.A                   one frame per changed state; the id names the state (coupon.domain.live_stock)
    event: stock                      stock | sold-out | closed (the last two end the stream)
    data: {"couponId": "…", "total": 500, "reserved": 137, "remaining": 363, "status": "ACTIVE"}

    : keep-alive                      a comment after each quiet heartbeat interval

The final frame also carries `retry: 60000`: a client that does not close its EventSource after it would otherwise
reconnect every few seconds, and be told the same final event each time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from flask import Response, current_app
from werkzeug.wsgi import ClosingIterator

from coupon.domain.live_stock import StockState
from coupon.http.json_provider import dumps_bytes
from coupon.services.stock_watch import Heartbeat, Retry, StreamItem

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT_FRAME = b": keep-alive\n\n"
FINAL_RETRY_MS = 60_000
# A client that takes no byte for this long (a dead peer behind a zero window) is dropped, instead of holding its
# greenlet in a blocked send until TCP gives up.
WRITE_TIMEOUT_S = 30.0


def retry_frame(ms: int) -> bytes:
    return f"retry: {int(ms)}\n\n".encode()


@lru_cache(maxsize=1024)
def state_frame(state: StockState) -> bytes:
    """One event per state, encoded once and shared by every subscriber it goes to."""
    head = f"retry: {FINAL_RETRY_MS}\n" if state.final else ""
    # orjson writes no newline, so the JSON is one data line.
    return (
        f"{head}id: {state.event_id}\nevent: {state.event_name}\ndata: ".encode()
        + dumps_bytes(state.as_json())
        + b"\n\n"
    )


def frame(item: StreamItem) -> bytes:
    if isinstance(item, StockState):
        return state_frame(item)
    if isinstance(item, Heartbeat):
        return HEARTBEAT_FRAME
    if isinstance(item, Retry):
        return retry_frame(item.ms)
    raise TypeError(f"not a stream item: {item!r}")


def stream_response(items: Iterator[StreamItem] | Iterable[StreamItem], sock: object = None) -> Response:
    """A streamed 200 of SSE frames. `sock` is the server's client socket (gunicorn: environ["gunicorn.socket"]),
    given a write timeout while the stream runs; None (another server) streams without one.

    The body is map(frame, items) behind a ClosingIterator: no generator of our own between the server and the
    stream (a few µs per event for each of thousands of subscribers), and no re-encoding (direct_passthrough: the
    frames are bytes). direct_passthrough hands the body to the server as it is, so its close() is the server's only
    way to end the stream (call_on_close would never run): without it a stream whose client left stayed subscribed
    until the garbage collector found its generator, minutes later on an idle worker (a CI run: 18 of 500).
    """
    stream = iter(items)
    settimeout = getattr(sock, "settimeout", None)
    if not callable(settimeout) or not _try(settimeout, WRITE_TIMEOUT_S):
        settimeout = None

    def finished() -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # the stream leaves the feed now, not when it is collected
        if settimeout is not None:
            _try(settimeout, None)  # blocking again for the connection's next request (keep-alive)

    return current_app.response_class(
        ClosingIterator(map(frame, stream), finished),
        status=200,
        mimetype=MEDIA_TYPE,
        headers=HEADERS,
        direct_passthrough=True,
    )


def _try(settimeout: Callable[[float | None], None], value: float | None) -> bool:
    try:
        settimeout(value)
    except OSError:
        return False
    return True

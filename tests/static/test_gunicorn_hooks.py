"""gunicorn.conf.py's worker hooks reach the app's resources: each worker warms its Kafka producer up and watches
for its own stop to end the live-stock streams (run against the real app, with gevent.spawn recorded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from coupon import create_app, resources

ROOT = Path(__file__).resolve().parents[2]


def _conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gunicorn_conf_under_test", ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_post_worker_init_warms_the_publisher_up_and_watches_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    import gevent

    app = create_app({"APP_ENV": "test"})
    spawned: list[tuple[Any, tuple[Any, ...]]] = []
    monkeypatch.setattr(gevent, "spawn", lambda fn, *args: spawned.append((fn, args)))
    # The hook also tunes the worker's garbage collector: not this test process's.
    monkeypatch.setattr("gc.freeze", lambda: None)
    monkeypatch.setattr("gc.set_threshold", lambda *_: None)
    _conf().post_worker_init(SimpleNamespace(wsgi=app, alive=True))
    warm_up = resources.of(app).publisher.warm_up
    assert any(fn == warm_up for fn, _ in spawned), f"the Kafka warm-up is not started: {spawned}"
    assert any(resources.of(app).stock_feed in args for _, args in spawned), "no watcher ends the streams on stop"


def _response(sent: list[bytes], headers: list[tuple[str, str]]) -> Any:
    from gunicorn.config import Config
    from gunicorn.http.wsgi import Response

    req = SimpleNamespace(version=(1, 1), method="POST", should_close=lambda: False)
    resp = Response(req, SimpleNamespace(sendall=sent.append), Config())
    resp.start_response("202 ACCEPTED", headers)
    return resp


def test_a_whole_body_leaves_with_its_headers_in_one_send_and_a_stream_keeps_gunicorns_way() -> None:
    _conf().send_headers_with_the_body()
    body = b'{"resultType":"SUCCESS"}'
    sent: list[bytes] = []
    resp = _response(sent, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    resp.write(body)
    resp.close()
    assert len(sent) == 1, sent
    head, _, rest = sent[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202 ACCEPTED\r\n") and b"\r\nContent-Length: 24" in head and rest == body
    # No Content-Length (a stream): headers first, then each chunk, as gunicorn sends them.
    streamed: list[bytes] = []
    resp = _response(streamed, [("Content-Type", "text/event-stream")])
    resp.write(b"data: 1\n\n")
    assert len(streamed) == 2 and streamed[0].endswith(b"\r\n\r\n") and streamed[1].endswith(b"data: 1\n\n\r\n")


def test_the_date_header_is_formatted_once_a_second_and_reads_as_gunicorns(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn import util

    monkeypatch.setattr(util, "http_date", util.http_date)  # the patch is undone after the test
    original = util.http_date
    _conf().date_header_once_a_second()
    clock = [1_700_000_000.25]
    monkeypatch.setattr("time.time", lambda: clock[0])
    first = util.http_date()
    assert first == original(1_700_000_000) == "Tue, 14 Nov 2023 22:13:20 GMT"
    calls: list[float] = []
    monkeypatch.setattr("email.utils.formatdate", lambda *a, **k: calls.append(a[0]) or "formatted")
    clock[0] = 1_700_000_000.9
    assert util.http_date() == first and calls == [], "the same second is formatted again"
    clock[0] = 1_700_000_001.0
    assert util.http_date() == "formatted" and calls == [1_700_000_001], "a new second kept the old text"
    assert util.http_date(5.0) == "formatted" and calls[-1] == 5.0, "an explicit timestamp must not be cached"

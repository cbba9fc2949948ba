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

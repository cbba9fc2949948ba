"""coupon rush: first-come-first-served coupon drops. `create_app` is the table of contents."""

from __future__ import annotations

from typing import Any

from flask import Flask

from coupon import cli, resources, settings
from coupon.extensions import db, init_migrations
from coupon.http import admission, issue_lane, minting, request_id_hooks
from coupon.http.error_handlers import register_error_handlers
from coupon.http.flask_app import CouponFlask
from coupon.http.json_provider import OrjsonProvider
from coupon.http.readiness_metrics import DependencyGauge
from coupon.http.views import register_blueprints
from coupon.observability import http_metrics, log_setup, metrics_endpoint


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = CouponFlask(__name__, static_folder=None)
    app.json = OrjsonProvider(app)
    config = settings.load_settings(overrides)
    settings.init_app(app, config)
    log_setup.init_app(app, config.log_level, config.kafka_log_level)
    request_id_hooks.init_app(app)

    db.init_app(app)
    init_migrations(app)
    minting.init_app(app)
    resources.init_app(app)

    admission.init_app(app)
    register_blueprints(app)
    issue_lane.init_app(app)
    register_error_handlers(app)
    metrics_endpoint.init_app(app, [DependencyGauge()])
    http_metrics.init_app(app)
    cli.init_app(app)
    return app

"""coupon rush: first-come-first-served coupon drops. `create_app` is the table of contents."""
from __future__ import annotations

from typing import Any

from flask import Flask

from coupon import auth, cli, logging_setup, metrics, resources
from coupon.api import admission, register_blueprints, tracing
from coupon.config import load_config
from coupon.error_handlers import register_error_handlers
from coupon.extensions import db, migrate
from coupon.serialization import OrjsonProvider


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.json = OrjsonProvider(app)
    app.config.update(load_config(overrides))
    logging_setup.init_app(app)
    tracing.init_app(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=app.config.get("MIGRATIONS_DIR", "migrations"))
    auth.init_app(app)
    resources.init_app(app)

    admission.init_app(app)
    register_blueprints(app)
    register_error_handlers(app)
    metrics.init_app(app)
    cli.init_app(app)
    return app

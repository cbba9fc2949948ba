"""HTTP layer: blueprints that parse, call one service, and shape the reply."""

from __future__ import annotations

from flask import Flask

from coupon.http.views import auth, coupons, docs, failures, health, users


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(coupons.bp)
    app.register_blueprint(failures.bp)
    app.register_blueprint(docs.bp)

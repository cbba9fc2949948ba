"""HTTP layer: blueprints that parse, call one service, and shape the reply."""
from __future__ import annotations

from flask import Flask

from coupon.api import admin, auth, coupons, docs, health, users


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(coupons.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(docs.bp)

"""Flask extensions, created unbound here and bound to the app in the factory."""

from __future__ import annotations

import os

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
jwt = JWTManager()


def init_migrations(app: Flask) -> None:
    """`flask db ...` (Flask-Migrate), for the `flask` command only: Flask-Migrate imports alembic, which every API
    worker, consumer and rq process would otherwise load at start and never use."""
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":  # set by the `flask` command before it loads the app
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=app.config.get("MIGRATIONS_DIR", "migrations"))

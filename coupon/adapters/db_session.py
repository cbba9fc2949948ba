"""The DB session type the repositories and services take.

Callers pass flask-sqlalchemy's `db.session`, a `scoped_session` that hands each call to the current scope's
Session; a plain SQLAlchemy Session (a script, a test) works the same. The two share no base class, so the
annotation names both."""

from __future__ import annotations

from typing import TypeAlias

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import Session, scoped_session

DbSession: TypeAlias = Session | scoped_session[FlaskSession]

"""A fresh database for a run: dropped, created, and brought to head by the real Alembic migrations."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from harness.processes import ROOT


def recreate_and_migrate(url: str, env: dict[str, str]) -> None:
    """`env` must point DATABASE_URL at `url`; the migrations run as `flask db upgrade` would."""
    parsed = make_url(url)
    engine = sa.create_engine(parsed.set(database=""))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
        conn.execute(sa.text(f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4"))
    engine.dispose()
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "-d", "migrations"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{out.stdout}\n{out.stderr}")

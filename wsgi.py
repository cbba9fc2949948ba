"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` (gevent workers patch before this import)."""

from coupon import create_app

app = create_app()

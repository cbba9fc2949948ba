"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` (gevent workers patch before this import)."""

from coupon import create_app
from coupon.settings import exit_if_invalid

# Status 4 is gunicorn's "app failed to load": its master stops, rather than booting workers that fail alike forever.
with exit_if_invalid(status=4):
    app = create_app()

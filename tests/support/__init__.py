"""Test support: real processes (gunicorn, consumers), a burst load generator, invariant checks."""

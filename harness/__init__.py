"""Drives a real stack from outside, for the tests and the benchmarks alike: processes, HTTP bursts, the DB, the
design's invariants. Neither tests/ nor bench/ is imported from here."""

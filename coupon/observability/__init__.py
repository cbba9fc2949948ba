"""Logs, metrics, request ids and progress output, for every process."""

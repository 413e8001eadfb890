"""Metrics, logs and the health of long-running tasks."""

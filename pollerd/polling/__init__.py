"""Polling: the cycle of a source, HTTP, budgets, fallback, and recording a change."""

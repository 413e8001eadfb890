"""Durable state: the SQLite store, payload files, crash-safe writes, the writer's lock."""

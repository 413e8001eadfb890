"""The embedded state: one SQLite file in the state directory (its schema, its queries, the
store the daemon uses, the high-water mark beside it)."""

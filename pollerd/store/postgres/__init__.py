"""The shared state of replicas: PostgreSQL (its schema, queries, payloads, leases and request
budgets). Imported only where ``[daemon] database`` is set: psycopg costs memory at start."""

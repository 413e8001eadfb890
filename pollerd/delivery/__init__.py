"""From the outbox to the sinks."""

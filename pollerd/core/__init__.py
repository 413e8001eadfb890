"""The pure parts every stage shares: values, decisions, checks, names and text."""

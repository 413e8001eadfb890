"""The desk: AP's calls held for an editor's acceptance, the desk's own calls and withdrawals, and
candidates' names as the newsroom publishes them; every decision kept, with who made it."""

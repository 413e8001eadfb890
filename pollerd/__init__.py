"""pollerd: watches election-data feeds and pushes only what changed."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/pollerd/pollerd"

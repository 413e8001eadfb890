"""``python -m pollerd``."""

from pollerd.cli import main

raise SystemExit(main())

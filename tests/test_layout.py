"""The package's import graph runs down the pipeline: no arrow back up."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pollerd"

# (importing package, imported package): arrows that must not exist
FORBIDDEN = [
    *(
        ("core", other)
        for other in (
            "config",
            "polling",
            "sources",
            "store",
            "delivery",
            "sinks",
            "daemon",
            "telemetry",
            "commands",
            "sim",
            "cli",
        )
    ),
    ("sinks", "daemon"),
    ("sources", "daemon"),
    ("polling", "delivery"),
    ("delivery", "polling"),
    ("polling", "daemon"),
    ("polling", "sources"),
    ("daemon", "commands"),
    ("delivery", "daemon"),
    ("store", "daemon"),
    ("store", "polling"),
    ("config", "sources"),
    ("config", "polling"),
    ("config", "daemon"),
    ("sinks", "polling"),
    *(("election", other) for other in ("sources", "polling", "store", "delivery", "sinks", "daemon")),
    ("polling", "sinks"),
    *(
        ("record", other)
        for other in ("polling", "sources", "store", "delivery", "sinks", "daemon", "commands", "replay")
    ),
    *(
        ("versions", other)
        for other in ("polling", "sources", "store", "delivery", "sinks", "daemon", "commands", "config")
    ),
    *(("election", "versions"), ("results", "versions"), ("core", "versions")),
    *(("replay", other) for other in ("polling", "store", "delivery", "sinks", "daemon", "commands")),
    *(
        ("results", other)
        for other in ("sources", "polling", "store", "delivery", "sinks", "daemon", "config")
    ),
]


def imports() -> set[tuple[str, str, str]]:
    """(importing module, its package, imported package) for every pollerd import."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        package = module.split(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith("pollerd."):
                    found.add((module, package, name.split(".")[1]))
    return found


def test_no_import_runs_back_up_the_pipeline() -> None:
    """core imports nothing else of pollerd; sinks and sources never import the daemon; polling
    and delivery never import each other; nothing below the daemon imports it; the poll cycle
    defines what a source is and never imports the source kinds (they import it); the daemon
    never imports the commands."""
    wrong = sorted(
        f"{module} imports pollerd.{imported}"
        for module, package, imported in imports()
        if (package, imported) in FORBIDDEN
    )
    assert wrong == []

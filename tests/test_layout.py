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
    *(
        ("desk", other)
        for other in ("polling", "sources", "store", "delivery", "sinks", "daemon", "commands", "config")
    ),
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


def test_the_readme_layout_names_every_module() -> None:
    """The README's layout table stays true: each room's row names every module in it (a
    sub-package's too), and every room has a row."""
    readme = (PACKAGE.parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`").rstrip("/"): line
        for line in readme.split("## Layout", 1)[1].splitlines()
        if line.startswith("| `") and "/` |" in line
    }
    rooms = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py")))
    missing_rooms = [room for room in rooms if room not in rows and room != "sim"]
    assert not missing_rooms, missing_rooms
    unnamed = [
        f"{room}/{path.relative_to(PACKAGE / room).with_suffix('')}"
        for room, row in rows.items()
        if (PACKAGE / room).is_dir()
        for path in (PACKAGE / room).rglob("*.py")
        if path.stem != "__init__" and room != "sim" and f"`{path.stem}`" not in row
    ]
    assert not unnamed, unnamed

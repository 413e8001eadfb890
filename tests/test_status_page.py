"""The status page for the night shift: one line per source and per sink at the top, the latest
calls of each source (a busy source never pushes another's off), and a chat sink's versions
left out by its filters counted apart from those it delivered; checked in headless Chromium."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from pollerd.config import parse_config
from pollerd.core.election import Fact
from pollerd.core.model import ResourceState
from tests.browser import browser_page
from tests.conftest import Upstream, opened, wait_for
from tests.test_election_events import Channel, channel, chat_sink
from tests.test_operations import running
from tests.test_store_queries import event

__all__ = ["channel"]  # the chat service fixture, used here too


def canton(number: int) -> Fact:
    """An FSO canton finished counting (a busy source's kind of news)."""
    details = {"canton_name": "Zürich", "ballot": "NR", "gemeinden_abgeschlossen": 162}
    return Fact(
        "canton_complete", f"ZH:{number}", f"canton:{number}", "done", None, details, scope={"canton": 1}
    )


def called(race: str) -> Fact:
    """An AP race call."""
    return Fact("race_called", race, f"call:{race}", "X:1", None, {"candidate": "X"}, scope={"state": "PA"})


async def test_a_busy_source_never_pushes_another_sources_calls_off_the_page(tmp_path: Path) -> None:
    """Two AP calls, then 40 canton events of the FSO source: the page still lists both calls,
    under the AP source, and at most 20 events of each source."""
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {"name": name, "kind": "http", "urls": [f"https://example.org/{name}.json"], "sinks": ["out"]}
                for name in ("ap", "fso")
            ],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    payload = tmp_path / "payload.json"
    async with opened(config) as daemon:
        for source, facts in (
            ("ap", [called("PA:1:G"), called("PA:2:G")]),
            ("fso", [canton(n) for n in range(40)]),
        ):
            for sequence, fact in enumerate(facts, 1):
                payload.write_bytes(b"{}")
                sha = hashlib.sha256(f"{source}{sequence}".encode()).hexdigest()
                version = dataclasses.replace(event("r", sequence, sha), source=source, election=(fact,))
                state = ResourceState("r", sequence=sequence, sha256=sha)
                await daemon.store.record_change(source, state, version, ["out"], payload)
        status = await daemon.status()
    by_source = {source["name"]: source["election_events"] for source in status["sources"]}
    assert [e["key"] for e in by_source["ap"]] == ["PA:2:G", "PA:1:G"]
    assert len(by_source["fso"]) == 20
    assert {e["source"] for e in status["election_events"]} == {"ap", "fso"}


async def test_the_night_shift_reads_the_top_of_the_page_in_a_browser(
    upstream: Upstream, channel: Channel, tmp_path: Path
) -> None:
    """A source that works, one whose host never answers, a chat sink subscribed to election
    events only, a filesystem sink: Chromium shows one line per source and sink first (state,
    since when, host in use), the failing source red; the chat sink delivered nothing and left
    the version out, and says so apart."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [url],
                    "interval": "200ms",
                    "sinks": ["out", "desk"],
                },
                {
                    "name": "nowhere",
                    "kind": "http",
                    "urls": ["http://127.0.0.1:9/x.json"],
                    "interval": "200ms",
                    "backoff_base": "20s",
                    "sinks": ["out"],
                },
            ],
            "sinks": [
                {"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")},
                chat_sink(channel, "text", events="election"),
            ],
        }
    )
    async with running(config) as (daemon, base):
        await wait_for(lambda: daemon.pollers["files"].status().changes >= 1, timeout=30)
        await wait_for(lambda: daemon.deliverer.pending == 0, timeout=30)
        await daemon.deliverer.refresh_depths()
        async with browser_page() as page:
            await page.open(f"{base}/status")
            rows = await page.evaluate(
                "[...document.querySelectorAll('#glance tr:not(:first-child)')]"
                ".map(r => [...r.cells].map(c => c.innerText))"
            )
            colours = await page.evaluate(
                "[...document.querySelectorAll('#glance tr[data-source]')]"
                ".map(r => getComputedStyle(r.cells[0]).backgroundColor)"
            )
            first_heading = await page.evaluate("document.querySelector('h2').id || ''")
            sinks = await page.evaluate(
                "[...document.querySelectorAll('h3 + table')]"
                ".filter(t => t.innerText.includes('filtered out'))"
                ".map(t => [...t.rows].map(r => [...r.cells].map(c => c.innerText)))[0]"
            )
    names = [row[0] for row in rows]
    assert names == ["files (http)", "nowhere (http)", "sink out (filesystem)", "sink desk (chat)"], rows
    files, nowhere = rows[0], rows[1]
    assert files[1] == "ok" and files[2].startswith("20") and files[4].startswith("127.0.0.1:")
    assert nowhere[1] == "failing"
    assert colours[0] != colours[1] and colours[1] == "rgb(253, 232, 234)"
    assert first_heading in ("", "election")  # the glance comes before every section
    header, *table = sinks
    desk = dict(zip(header, next(row for row in table if row[0] == "desk"), strict=True))
    assert desk["delivered"] == "0" and desk["filtered out"] == "1", desk

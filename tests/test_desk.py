"""The desk decides (AP's calls held for acceptance, the desk's own calls, conflicts told
loudly), on the AP simulator served on 127.0.0.1 and a daemon on a real state: end to end, from
the simulator's flags to the election events committed and the alerts raised."""

from __future__ import annotations

import asyncio
import getpass
import json
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from pollerd.cli import main
from pollerd.config import Config, ConfigError, parse_config
from pollerd.config.ap import ApSourceConfig
from pollerd.daemon.app import Daemon
from pollerd.sim import SimServer
from pollerd.sim.ap import ApServer
from pollerd.sim.ap_election import ApElection
from pollerd.telemetry.alerts import Alert
from tests.browser import Page, browser_page
from tests.conftest import AP_KEY, ap_source, one_source, opened
from tests.test_operations import running


def race_of(election: ApElection, state: str, office: str) -> str:
    """The key of a state's race for an office."""
    return next(
        key
        for key, race in election.races.items()
        if race["statePostal"] == state and race["officeID"] == office
    )


def candidate_ids(election: ApElection, key: str) -> list[str]:
    """The race's candidates' AP IDs, as the simulator lists them."""
    return [c["candidateID"] for c in election.races[key]["reportingUnits"][0]["candidates"]]


def desk_config(tmp_path: Path, base: str, calls: Any) -> Config:
    """One AP source (Pennsylvania) whose calls are judged by ``calls``."""
    queries = [{"name": "pennsylvania", "statePostal": "PA"}]
    source = ap_source(base, ["out"], quota_per_minute=100_000, queries=queries, calls=calls)
    return one_source(tmp_path, source, [{"name": "out", "kind": "stdout"}])


class Heard:
    """Takes the daemon's alerts (what a chat sink with ``ops = true`` would post)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def alert(self, alert: Alert) -> None:
        """Keep it."""
        self.alerts.append(alert)


def listen(daemon: Daemon) -> Heard:
    """The daemon's alerts, from now on."""
    heard = Heard()
    daemon.alerts.listen(lambda: [heard])
    return heard


async def told(daemon: Daemon, key: str) -> list[dict[str, Any]]:
    """The election events of a race, oldest first."""
    return [e for e in reversed(await daemon.store.latest_election_events(200, "ap")) if e["key"] == key]


def stories(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(type, by) of each event."""
    return [(e["type"], e.get("by")) for e in events]


async def test_a_held_call_waits_for_the_desk_and_a_retraction_after_it_is_a_conflict(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """Calls held for the presidency and the Senate (the simulator has no held_raceial race):
    AP calls Pennsylvania's Senate race, the desk hears it as pending, not as called; accepted,
    it is called ``by: desk``; AP takes its call back: a conflict and an alert, the desk's call
    stands until the desk withdraws it. The governor's race is accepted as AP calls it."""
    replay, base = ap_uncalled
    held_race = race_of(replay.election, "PA", "S")
    senate = race_of(replay.election, "PA", "G")
    config = desk_config(tmp_path, base, [{"office": ["P", "S"], "calls": "hold"}])
    async with opened(config) as daemon:
        heard = listen(daemon)
        assert await daemon.run_once()
        replay.election.call(held_race)
        replay.election.call(senate)
        assert await daemon.run_once()
        assert stories(await told(daemon, held_race)) == [("call_pending", "ap")]
        assert stories(await told(daemon, senate)) == [("race_called", "ap")]  # accepted as it came
        [pending] = await told(daemon, held_race)
        leader = pending["new"]["candidate_id"]
        assert pending["state"] == f"X:{leader}" and pending["new"]["ap_called_at"]

        answer = await daemon.decide({"source": "ap", "race": held_race, "action": "accept"}, "editor")
        assert answer["code"] == 0, answer
        assert "accepted AP's call" in answer["message"]
        called = (await told(daemon, held_race))[-1]
        assert (called["type"], called["by"], called["state"]) == ("race_called", "desk", f"X:{leader}")
        assert called["new"]["decided_by"] == "editor"

        again = await daemon.decide({"source": "ap", "race": held_race, "action": "accept"}, "editor")
        assert again["code"] == 1 and "already" in again["message"]

        replay.election.retract(held_race)
        assert await daemon.run_once()
        conflict = (await told(daemon, held_race))[-1]
        assert (conflict["type"], conflict["state"]) == ("call_conflict", f"ap=;desk=X:{leader}")
        assert [a.kind for a in heard.alerts] == ["call_conflict"]
        assert (
            "AP does not call it" in heard.alerts[0].text and "the desk's call stands" in heard.alerts[0].text
        )
        assert not [e for e in await told(daemon, held_race) if e["type"] == "call_retracted"]

        withdrawn = await daemon.decide({"source": "ap", "race": held_race, "action": "withdraw"}, "chief")
        assert withdrawn["code"] == 0, withdrawn
        assert stories(await told(daemon, held_race))[-2:] == [
            ("call_retracted", "desk"),
            ("call_conflict", "desk"),  # the conflict is over: the desk has no call any more
        ]
        assert (await told(daemon, held_race))[-1]["state"] == ""
        assert len(heard.alerts) == 1


async def test_the_desk_calls_before_ap_and_ap_agrees_or_not(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """The desk calls two races before AP. AP calls the first for the same candidate: no second
    ``race_called``, no conflict. AP calls the second for someone else: a conflict; the
    published call stays the desk's."""
    replay, base = ap_uncalled
    governor = race_of(replay.election, "PA", "G")
    senate = race_of(replay.election, "PA", "S")
    config = desk_config(tmp_path, base, "accept")
    async with opened(config) as daemon:
        heard = listen(daemon)
        assert await daemon.run_once()
        first, second = candidate_ids(replay.election, governor)[:2]
        for key, who in ((governor, first), (senate, candidate_ids(replay.election, senate)[0])):
            answer = await daemon.decide(
                {"source": "ap", "race": key, "action": "call", "candidate": who}, "ed"
            )
            assert answer["code"] == 0, answer
        assert stories(await told(daemon, governor)) == [("race_called", "desk")]

        replay.election.call(governor, first)
        replay.election.call(senate, candidate_ids(replay.election, senate)[1])
        assert await daemon.run_once()
        assert stories(await told(daemon, governor)) == [("race_called", "desk")]
        assert stories(await told(daemon, senate)) == [("race_called", "desk"), ("call_conflict", "ap")]
        assert [a.kind for a in heard.alerts] == ["call_conflict"]

        wrong = await daemon.decide(
            {"source": "ap", "race": governor, "action": "call", "candidate": "999"}, "ed"
        )
        assert wrong["code"] == 1 and f"candidates: {first} Alex1" in wrong["message"]
        assert second in wrong["message"]

        changed = {"source": "ap", "race": governor, "action": "call", "candidate": second}
        assert (await daemon.decide(changed, "ed"))["code"] == 0  # the desk changes its call
        assert stories(await told(daemon, governor))[-2:] == [
            ("call_changed", "desk"),
            ("call_conflict", "desk"),
        ]
        assert [a.kind for a in heard.alerts] == ["call_conflict", "call_conflict"]  # AP still says first


async def test_decisions_from_the_shell_are_kept_and_applied_when_pollerd_runs(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pollerd calls accept`` with no daemon running keeps the decision; the next poll applies
    it; ``calls log`` says who made it and what it replaced, ``calls list`` what waits; the desk's
    call survives a restart (AP's retraction after it is a conflict, not a retraction)."""
    replay, base = ap_uncalled
    held_race = race_of(replay.election, "PA", "S")
    config = desk_config(tmp_path, base, "hold")
    toml = tmp_path / "pollerd.toml"
    state = tmp_path / "state"
    toml.write_text(
        f'[daemon]\nstate_dir = "{state}"\nmetrics = "off"\n\n'
        f'[[sources]]\nname = "ap"\nkind = "ap"\napi = "{base}"\nelection_date = "2026-11-03"\n'
        f'api_key = "{AP_KEY}"\nsinks = ["out"]\ncalls = "hold"\nquota_per_minute = 100000\n'
        '[[sources.queries]]\nname = "pennsylvania"\nstatePostal = "PA"\n\n'
        '[[sinks]]\nname = "out"\nkind = "stdout"\n'
    )
    async with opened(config) as daemon:
        assert await daemon.run_once()
        replay.election.call(held_race)
        assert await daemon.run_once()
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["calls", "list", "-c", str(toml)]) == 0
    listed = capsys.readouterr().out
    assert "1 AP call(s) waiting for the desk" in listed and held_race in listed
    assert (
        await asyncio.to_thread(
            main, ["calls", "accept", "-c", str(toml), held_race, "--note", "checked with the desk"]
        )
        == 0
    )
    assert "kept; no running pollerd polls ap now" in capsys.readouterr().out
    async with opened(config) as daemon:
        assert await daemon.run_once()
        assert stories(await told(daemon, held_race)) == [("call_pending", "ap"), ("race_called", "desk")]
    async with opened(config) as daemon:  # a restart: the desk's call is still the desk's
        replay.election.retract(held_race)
        assert await daemon.run_once()
        assert stories(await told(daemon, held_race))[-1] == ("call_conflict", "ap")
    assert await asyncio.to_thread(main, ["calls", "log", "-c", str(toml)]) == 0
    log = capsys.readouterr().out
    assert f"{getpass.getuser()}: accept {held_race} -> applied: the desk accepted AP's call" in log
    assert "replaced no call (checked with the desk)" in log
    assert await asyncio.to_thread(main, ["calls", "list", "-c", str(toml)]) == 0
    listed = capsys.readouterr().out
    assert "0 AP call(s) waiting" in listed and "CONFLICTS: 1" in listed


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ("maybe", "sources[0].calls: Input should be 'accept' or 'hold'"),
        ([{"office": "P"}], "sources[0].calls[0].calls: Field required"),
        ([{"race": "1009", "calls": "hold"}], "STATE:raceID"),
        ([{"office": "P", "calls": "hold", "colour": "red"}], "sources[0].calls[0].colour: unknown key"),
    ],
)
def test_the_calls_rules_refuse_what_cannot_be_meant(calls: Any, message: str, tmp_path: Path) -> None:
    queries = [{"name": "all", "statePostal": "PA"}]
    source = ap_source("http://127.0.0.1:1", ["out"], calls=calls, queries=queries)
    sinks = [{"name": "out", "kind": "stdout"}]
    with pytest.raises(ConfigError) as refused:
        parse_config({"daemon": {"state_dir": str(tmp_path)}, "sources": [source], "sinks": sinks})
    assert len(refused.value.problems) == 1 and message in refused.value.problems[0], refused.value.problems


async def winners(url: str, key: str) -> list[tuple[str, bool, bool]]:
    """(candidateid, winner, ap_winner) of a race's top unit in the postgres sink's results."""
    state, race, race_type = key.split(":")
    async with await psycopg.AsyncConnection.connect(url) as db:
        cursor = await db.execute(
            "SELECT candidateid, winner, ap_winner FROM results WHERE statepostal = %s AND raceid = %s"
            " AND racetypeid = %s AND level = 'state' ORDER BY candidateid",
            (state, race, race_type),
        )
        return [(str(c), bool(w), bool(a)) for c, w, a in await cursor.fetchall()]


async def test_the_published_winner_follows_the_desk(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path, postgres_url: str
) -> None:
    """In the postgres sink: a held call leaves ``winner`` empty (``ap_winner`` says AP's flag);
    accepted, ``winner`` is set; AP retracts, ``winner`` stays the desk's; the desk withdraws,
    it goes. The filesystem sink's CSV (elex's columns only) follows the desk too."""
    replay, base = ap_uncalled
    senate = race_of(replay.election, "PA", "S")
    queries = [{"name": "pennsylvania", "statePostal": "PA"}]
    source = ap_source(base, ["db", "files"], quota_per_minute=100_000, queries=queries, calls="hold")
    sinks = [
        {"name": "db", "kind": "postgres", "url": postgres_url},
        {"name": "files", "kind": "filesystem", "root": str(tmp_path / "out"), "format": "csv"},
    ]
    config = one_source(tmp_path, source, sinks)
    async with opened(config) as daemon:
        assert await daemon.run_once()
        replay.election.call(senate)
        assert await daemon.run_once()
        leader = (await told(daemon, senate))[-1]["new"]["candidate_id"]
        held = await winners(postgres_url, senate)
        assert held and not any(w for _, w, _ in held)
        assert [c for c, _, a in held if a] == [leader]
        csv_rows = (tmp_path / "out" / "ap" / "pennsylvania" / "latest.csv").read_text().splitlines()
        assert csv_rows[0].endswith(",winner") and "ap_winner" not in csv_rows[0]
        assert not [row for row in csv_rows if f",{leader}," in row and row.endswith(",True")]

        await daemon.decide({"source": "ap", "race": senate, "action": "accept"}, "editor")
        assert await daemon.run_once()  # delivers the desk's version
        assert [c for c, w, _ in await winners(postgres_url, senate) if w] == [leader]

        replay.election.retract(senate)
        assert await daemon.run_once()
        after = await winners(postgres_url, senate)
        assert [c for c, w, _ in after if w] == [leader] and not any(a for _, _, a in after)
        csv_rows = (tmp_path / "out" / "ap" / "pennsylvania" / "latest.csv").read_text().splitlines()
        top = next(row for row in csv_rows if f",{leader}," in row and ",state," in row)
        assert top.endswith(",True")

        await daemon.decide({"source": "ap", "race": senate, "action": "withdraw"}, "editor")
        assert await daemon.run_once()
        assert not any(w for _, w, _ in await winners(postgres_url, senate))


def test_the_readme_example_holds_what_it_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README's ``[[sources.calls]]`` example loads, and holds the races its comments say."""
    monkeypatch.setenv("AP_API_KEY", "readme-key-0123456789")
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Calls and the desk", 1)[1].split("\n## ", 1)[0]
    [block] = [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]
    sinks = [{"name": "db", "kind": "stdout"}, {"name": "desk", "kind": "stdout"}]
    config = parse_config({"daemon": {"state_dir": str(tmp_path)}, **tomllib.loads(block), "sinks": sinks})
    [source] = config.sources
    assert isinstance(source, ApSourceConfig)
    assert source.calls_for("H", "PA", "PA:1011:G") == "accept"
    assert source.calls_for("H", "PA", "PA:1012:G") == "hold"
    assert source.calls_for("S", "CA", "CA:2001:G") == "hold"
    assert source.calls_for("P", "TX", "TX:0:G") == "hold"
    assert source.calls_for("G", "CA", "CA:2002:G") == "accept"


TOKEN = "desk-token-5b9e1f0c7a2d4e68"


async def submitted(page: Page, fields: dict[str, str]) -> str:
    """Fill the desk's form as an editor would and send it; the outcome line shown."""
    await page.evaluate(
        "(() => { const form = document.getElementById('decide');"
        f" for (const [k, v] of Object.entries({json.dumps(fields)})) form.elements[k].value = v;"
        " form.requestSubmit(); })()"
    )
    for _ in range(600):
        outcome = await settled_value(page, "document.getElementById('outcome')?.innerText || ''")
        if outcome:
            return str(outcome)
        await asyncio.sleep(0.05)
    raise AssertionError("the form's answer never came")


async def settled_value(page: Page, expression: str) -> Any:
    """The expression's value, or None while the tab is between two pages (a form was sent)."""
    try:
        return await page.evaluate(expression)
    except AssertionError as exc:  # DevTools: "Inspected target navigated or closed", or no context
        if "navigated" not in str(exc) and "context" not in str(exc).lower():
            raise
        return None


async def test_the_desk_form_decides_with_the_token_only_and_from_its_own_page(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """In headless Chromium: /desk lists the held call; the form with the control token accepts
    it (kept with the name given); without the token, or sent from a page of another origin
    (with the right token), it is refused with a clear error and nothing is decided. The token is
    in no page, no log line, no state."""
    replay, base = ap_uncalled
    held_race = race_of(replay.election, "PA", "S")
    token_file = tmp_path / "control-token"
    token_file.write_text(TOKEN + "\n")
    queries = [{"name": "pennsylvania", "statePostal": "PA"}]
    source = ap_source(
        base, ["out"], quota_per_minute=100_000, queries=queries, calls="hold", interval="200ms"
    )
    daemon_table = {
        "state_dir": str(tmp_path / "state"),
        "metrics": "127.0.0.1:0",
        "control_token_file": str(token_file),
    }
    config = parse_config(
        {"daemon": daemon_table, "sources": [source], "sinks": [{"name": "out", "kind": "stdout"}]}
    )
    elsewhere = SimServer()
    async with running(config) as (daemon, status_base):
        replay.election.call(held_race)
        await wait_for_async(lambda: _told_types(daemon, held_race), ["call_pending"])
        attack = web.Application()

        async def page_elsewhere(request: web.Request) -> web.Response:
            fields = "".join(
                f'<input name="{k}" value="{v}">'
                for k, v in {
                    "source": "ap",
                    "action": "accept",
                    "race": held_race,
                    "made_by": "x",
                    "token": TOKEN,
                }.items()
            )
            return web.Response(
                text=f'<html><body><form id="f" method="post" action="{status_base}/desk">{fields}</form>'
                "<script>document.getElementById('f').submit()</script></body></html>",
                content_type="text/html",
            )

        attack.router.add_get("/", page_elsewhere)
        other = await elsewhere.serve(attack)
        async with browser_page() as page:
            await page.send("Page.navigate", url=f"{other}/")  # the page sends the form at once
            refused_elsewhere = ""
            for _ in range(600):  # the tab moves between pages: asked only once it has arrived
                if await settled_value(page, "location.href") == f"{status_base}/desk":
                    refused_elsewhere = await settled_value(
                        page, "document.getElementById('outcome')?.innerText"
                    )
                    if refused_elsewhere:
                        break
                await asyncio.sleep(0.05)
            assert refused_elsewhere == "refused: the form was sent from another origin"
            assert await daemon.store.decisions("ap") == []

            await page.open(f"{status_base}/desk")
            assert await page.evaluate(
                f"!!document.querySelector('table.pending tr[data-race=\"{held_race}\"]')"
            )
            form = {"source": "ap", "action": "accept", "race": held_race, "made_by": "Dana at the desk"}
            wrong = await submitted(page, form | {"token": "not-the-token-at-all"})
            assert wrong == "refused: the control token is missing or wrong"
            assert await daemon.store.decisions("ap") == []

            await page.open(f"{status_base}/desk")
            accepted = await submitted(page, form | {"token": TOKEN})
            assert accepted.startswith("decision 1: the desk accepted AP's call of U.S. Senate for Alex"), (
                accepted
            )
            shown = await page.evaluate("document.documentElement.outerHTML")
        [decision] = await daemon.store.decisions("ap")
        assert decision.made_by == "Dana at the desk" and decision.status == "applied"
        assert _told_types_now(await told(daemon, held_race)) == ["call_pending", "race_called"]
    await elsewhere.close()
    assert TOKEN not in shown
    state = (tmp_path / "state" / "pollerd.sqlite3").read_bytes()
    assert TOKEN.encode() not in state


async def _told_types(daemon: Daemon, key: str) -> list[str]:
    return _told_types_now(await told(daemon, key))


def _told_types_now(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def wait_for_async(probe: Any, expected: Any, timeout: float = 30) -> None:
    """Wait until ``await probe()`` equals ``expected``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.05)


async def test_without_a_token_the_status_server_is_read_only(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """No ``control_token_file``: /desk shows what waits, says decisions are made with
    ``pollerd calls``, and a POST is refused (403) whatever it carries."""
    _, base = ap_uncalled
    queries = [{"name": "pennsylvania", "statePostal": "PA"}]
    source = ap_source(base, ["out"], quota_per_minute=100_000, calls="hold", queries=queries)
    daemon_table = {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0"}
    config = parse_config(
        {"daemon": daemon_table, "sources": [source], "sinks": [{"name": "out", "kind": "stdout"}]}
    )
    async with running(config) as (daemon, status_base), aiohttp.ClientSession() as session:
        async with session.get(f"{status_base}/desk") as shown:
            page = await shown.text()
        assert shown.status == 200 and 'id="read-only"' in page and "<form" not in page
        form = {
            "source": "ap",
            "action": "withdraw",
            "race": "PA:1009:G",
            "made_by": "x",
            "token": "anything-at-all-1",
        }
        async with session.post(f"{status_base}/desk", data=form) as refused:
            assert refused.status == 403 and "read-only" in await refused.text()
        assert await daemon.store.decisions("ap") == []


async def test_an_override_names_the_candidate_as_the_newsroom_does(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """The desk publishes a candidate's name and party otherwise: every call told from then on
    (AP's and the desk's) says them, AP's kept beside; an unknown candidate is refused."""
    replay, base = ap_uncalled
    governor = race_of(replay.election, "PA", "G")
    first = candidate_ids(replay.election, governor)[0]
    config = desk_config(tmp_path, base, "accept")
    async with opened(config) as daemon:
        assert await daemon.run_once()
        renamed = {"source": "ap", "race": governor, "action": "override", "candidate": first}
        answer = await daemon.decide(renamed | {"name": "Alexandra Rivera", "party": "Democratic"}, "ed")
        assert answer["code"] == 0 and "is shown as Alexandra Rivera (Democratic)" in answer["message"]
        unknown = await daemon.decide(renamed | {"candidate": "404", "name": "Nobody"}, "ed")
        assert unknown["code"] == 1 and "no candidate 404" in unknown["message"]
        replay.election.call(governor, first)
        assert await daemon.run_once()
        called = (await told(daemon, governor))[-1]
        assert (called["type"], called["by"]) == ("race_called", "ap")
        assert called["new"]["candidate"] == "Alexandra Rivera" and called["new"]["party"] == "Democratic"
        assert called["new"]["ap_candidate"] == "Alex1 Rivera" and called["new"]["ap_party"] == "Dem"

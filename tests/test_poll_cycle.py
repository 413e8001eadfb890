"""The poll cycle end to end against the simulator: probes, downloads, events, restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pollerd.sim import Fault
from tests.conftest import (
    ConfigFactory,
    Upstream,
    file_poller,
    opened,
    sample,
    stdout_events,
    versions_on_disk,
    wait_out_backoff,
)


def methods(upstream: Upstream) -> list[str]:
    """The methods of every logged request, in order."""
    return [r.method for r in upstream.host.log]


async def test_unchanged_resource_costs_one_head_per_poll(
    upstream: Upstream, make_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unchanged file with validators costs exactly one HEAD per poll and yields no event."""
    upstream.file("/a.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/a.json")])) as daemon:
        assert await daemon.run_once()
        upstream.host.log.clear()
        capsys.readouterr()
        for _ in range(3):
            assert await daemon.run_once()
    assert methods(upstream) == ["HEAD", "HEAD", "HEAD"]
    assert stdout_events(capsys.readouterr().out) == []


async def test_change_yields_one_get_and_one_event_per_sink(
    upstream: Upstream,
    make_config: ConfigFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A new version costs one HEAD and one GET, and reaches the stdout and filesystem sinks once."""
    upstream.host.add("/a.json")
    first = upstream.host.publish("/a.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/a.json")])) as daemon:
        assert await daemon.run_once()
        upstream.host.log.clear()
        capsys.readouterr()
        upstream.host.publish("/a.json", b'{"v": 2}')
        assert await daemon.run_once()
    assert methods(upstream) == ["HEAD", "GET"]
    [event] = stdout_events(capsys.readouterr().out)
    assert event["sequence"] == 2
    assert event["resource"] == "a.json"
    assert event["validators"]["etag"] == upstream.etag("/a.json")
    out = tmp_path / "out"
    assert len(versions_on_disk(out, "files", "a.json")) == 2
    assert (out / "files" / "a.json" / "latest.json").read_bytes() == b'{"v": 2}'
    latest_event = json.loads((out / "files" / "a.json" / "latest.event.json").read_text())
    assert latest_event["event_id"] == event["event_id"]
    assert event["previous_sha256"] != event["sha256"]
    assert first.etag != event["validators"]["etag"]


async def test_new_validators_with_identical_bytes_are_not_a_change(
    upstream: Upstream, make_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-upload of the same bytes (new Last-Modified) is counted but announces nothing; the
    ETag is the bytes' MD5 (as S3's is), so nothing is downloaded either."""
    upstream.file("/a.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/a.json")])) as daemon:
        assert await daemon.run_once()
        capsys.readouterr()
        upstream.host.files["/a.json"].publish(b'{"v": 1}', at=time.time() + 5)
        upstream.host.log.clear()
        assert await daemon.run_once()
        assert methods(upstream) == ["HEAD"]
        assert sample(daemon, "pollerd_validator_only_changes_total", source="files") == 1
        upstream.host.log.clear()
        assert await daemon.run_once()
        assert methods(upstream) == ["HEAD"]
    assert stdout_events(capsys.readouterr().out) == []


async def test_server_without_validators_is_compared_by_hash(
    upstream: Upstream, make_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no ETag or Last-Modified, auto falls back to GET + sha256, and still finds changes."""
    upstream.host.add("/plain.json", validators="none")
    upstream.host.publish("/plain.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/plain.json")])) as daemon:
        assert await daemon.run_once()
        assert methods(upstream) == ["HEAD", "GET"]
        upstream.host.log.clear()
        assert await daemon.run_once()
        assert methods(upstream) == ["GET"]
        upstream.host.publish("/plain.json", b'{"v": 2}')
        assert await daemon.run_once()
    events = stdout_events(capsys.readouterr().out)
    assert [e["sequence"] for e in events] == [1, 2]


async def test_refused_head_falls_back_to_conditional_get(
    upstream: Upstream, make_config: ConfigFactory
) -> None:
    """HEAD answered 405: pollerd uses If-None-Match GETs, and an unchanged file costs one 304."""
    upstream.host.add("/a.json", head_allowed=False)
    upstream.host.publish("/a.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/a.json")])) as daemon:
        assert await daemon.run_once()
        assert [(r.method, r.status) for r in upstream.host.log] == [("HEAD", 405), ("GET", 200)]
        upstream.host.log.clear()
        assert await daemon.run_once()
    [request] = upstream.host.log
    assert (request.method, request.status) == ("GET", 304)
    assert request.headers["If-None-Match"] == upstream.etag("/a.json")


BAD_BODIES = {
    "truncated": Fault("truncate", methods=frozenset({"GET"})),
    "html": Fault("html", methods=frozenset({"GET"})),
}


@pytest.mark.parametrize("reason", ["truncated", "html", "invalid_json", "oversize", "empty"])
async def test_bad_bodies_are_rejected_and_retried(
    reason: str,
    upstream: Upstream,
    make_config: ConfigFactory,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A bad body yields no event and is counted; the next good version is delivered."""
    upstream.file("/a.json", b'{"v": 1}')
    async with opened(make_config([upstream.url("/a.json")], max_bytes=2000)) as daemon:
        assert await daemon.run_once()
        capsys.readouterr()
        if reason in BAD_BODIES:
            upstream.host.publish("/a.json", b'{"v": 2}')
            upstream.host.inject("/a.json", BAD_BODIES[reason])
        else:
            bad = {"invalid_json": b'{"v": ', "oversize": b'{"pad": "' + b"x" * 5000 + b'"}', "empty": b""}[
                reason
            ]
            upstream.host.publish("/a.json", bad)
        assert not await daemon.run_once()
        assert stdout_events(capsys.readouterr().out) == []
        assert sample(daemon, "pollerd_rejected_payloads_total", source="files", reason=reason) == 1
        assert sample(daemon, "pollerd_polls_total", source="files", outcome="error") == 1
        upstream.host.publish("/a.json", b'{"v": 3}')
        await wait_out_backoff(daemon)
        assert await daemon.run_once()
    [event] = stdout_events(capsys.readouterr().out)
    assert event["sequence"] == 2
    latest = tmp_path / "out" / "files" / "a.json" / "latest.json"
    assert latest.read_bytes() == b'{"v": 3}'
    assert len(versions_on_disk(tmp_path / "out", "files", "a.json")) == 2


async def test_429_retry_after_is_honoured_for_the_whole_host(
    upstream: Upstream, make_config: ConfigFactory
) -> None:
    """After a 429 with Retry-After: 2, nothing on that host is requested for 2 seconds."""
    for path in ("/a.json", "/b.json"):
        upstream.host.add(path)
        upstream.host.publish(path, b"{}")
    config = make_config([upstream.url("/a.json"), upstream.url("/b.json")])
    async with opened(config) as daemon:
        assert await daemon.run_once()
        upstream.host.inject("/a.json", Fault("status", status=429, retry_after="2"))
        limited_at = time.time()
        assert not await daemon.run_once()
        upstream.host.log.clear()
        assert not await daemon.run_once()  # within the 2 s: nothing asked, a.json still failing
        assert upstream.host.log == []
        state = daemon.pollers["files"].states["a.json"]
        assert state.backoff_until is not None and state.backoff_until >= limited_at + 2
        await wait_out_backoff(daemon)
        assert await daemon.run_once()
    assert sorted(r.path for r in upstream.host.log) == ["/a.json", "/b.json"]
    assert min(r.at for r in upstream.host.log) >= limited_at + 2


async def test_failing_host_does_not_hold_up_other_resources(
    upstream: Upstream, second_upstream: Upstream, make_config: ConfigFactory
) -> None:
    """A resource in backoff is skipped; a resource on another host keeps its schedule."""
    upstream.file("/a.json", b"{}")
    second_upstream.file("/b.json", b"{}")
    upstream.host.inject("*", Fault("status", status=500, count=-1))
    config = make_config([upstream.url("/a.json"), second_upstream.url("/b.json")], backoff_base="30s")
    async with opened(config) as daemon:
        for _ in range(3):
            await daemon.run_once()
    assert len(upstream.host.log) == 1
    assert len(second_upstream.host.log) == 1 + 1 + 1 + 1  # HEAD+GET, then a HEAD per poll


async def test_restart_does_not_announce_delivered_content_again(
    upstream: Upstream,
    make_config: ConfigFactory,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A new daemon on the same state directory sends no event for content already delivered."""
    upstream.file("/a.json", b'{"v": 1}')
    config = make_config([upstream.url("/a.json")])
    async with opened(config) as daemon:
        assert await daemon.run_once()
    assert len(stdout_events(capsys.readouterr().out)) == 1
    upstream.host.log.clear()
    async with opened(config) as daemon:
        assert await daemon.run_once()
    assert stdout_events(capsys.readouterr().out) == []
    assert methods(upstream) == ["HEAD"]
    assert len(versions_on_disk(tmp_path / "out", "files", "a.json")) == 1


async def test_gzip_is_accepted_and_hashed_decoded(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """A gzip-encoded answer is stored decoded, byte for byte as published."""
    body = json.dumps({"rows": list(range(500))}).encode()
    upstream.file("/big.json", body)
    async with opened(make_config([upstream.url("/big.json")])) as daemon:
        assert await daemon.run_once()
    get = upstream.host.requests("GET")[0]
    assert "gzip" in get.headers["Accept-Encoding"]
    assert get.sent_bytes < len(body)
    assert (tmp_path / "out" / "files" / "big.json" / "latest.json").read_bytes() == body


async def test_upstream_name_cannot_escape_the_output_root(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """A URL whose last segment decodes to '../../x' is stored inside the output root."""
    path = "/feeds/..%2F..%2F..%2Fescaped.json"
    upstream.file("/feeds/../../../escaped.json", b"{}")
    async with opened(make_config([upstream.url(path)])) as daemon:
        await daemon.run_once()
        [resource] = file_poller(daemon, "files").resources
    assert "/" not in resource.id and ".." not in resource.id
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "state" not in p.parts]
    assert written, "the version was not written at all"
    out = (tmp_path / "out").resolve()
    assert all(out in p.resolve().parents for p in written)


async def test_filesystem_retention_keeps_the_newest_versions(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """keep_versions = 2: older versions and their event files are removed, latest stays."""
    upstream.host.add("/a.json")
    config = make_config([upstream.url("/a.json")])
    sinks = [s.model_copy(update={"keep_versions": 2}) if s.kind == "filesystem" else s for s in config.sinks]
    async with opened(config.model_copy(update={"sinks": sinks})) as daemon:
        for n in range(4):
            upstream.host.publish("/a.json", f'{{"v": {n}}}'.encode())
            assert await daemon.run_once()
    folder = tmp_path / "out" / "files" / "a.json"
    kept = versions_on_disk(tmp_path / "out", "files", "a.json")
    assert [p.read_bytes() for p in kept] == [b'{"v": 2}', b'{"v": 3}']
    assert len(list(folder.glob("2*.event.json"))) == 2
    assert (folder / "latest.json").read_bytes() == b'{"v": 3}'

"""SIGHUP's reload keeps every sink and source alive: changed, removed and re-added, twice at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pollerd.config import load_config
from pollerd.core.signature import verify
from pollerd.sim import Fault
from tests.conftest import Receiver, Upstream, sample, wait_for
from tests.test_operations import running


def webhook_config(tmp_path: Path, upstream: Upstream, sink: str, *, named: bool = True) -> str:
    """One http source (a.json every 200 ms) and the given ``[[sinks]]`` body, called ``hook``;
    ``named``: the source delivers to it (else to a filesystem sink ``keep`` only)."""
    return (
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nmetrics = "127.0.0.1:0"\n'
        f'[[sources]]\nname = "files"\nkind = "http"\nurls = ["{upstream.url("/a.json")}"]\n'
        f'interval = "200ms"\nsinks = {json.dumps(["keep", "hook"] if named else ["keep"])}\n'
        f'[[sinks]]\nname = "keep"\nkind = "filesystem"\nroot = "{tmp_path / "out"}"\n'
        + (f'[[sinks]]\nname = "hook"\n{sink}' if named else "")
    )


def first_delivery_config(tmp_path: Path, upstream: Upstream, receiver: Receiver) -> tuple[str, Path]:
    """a.json at version 1 and a config file delivering it to the receiver: the hook table's
    body and the file."""
    upstream.file("/a.json", b'{"v": 1}')
    hook = f'kind = "webhook"\nurl = "{receiver.url}"\nsecret = "s3cret-for-the-test"\n'
    path = tmp_path / "pollerd.toml"
    path.write_text(webhook_config(tmp_path, upstream, hook))
    return hook, path


async def test_changing_every_key_of_a_sink_takes_effect(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """url, secret, body, timeout, headers, retry and coalescing all change: the next version
    goes to the new URL, in the new form, signed with the new secret."""
    upstream.file("/a.json", b'{"v": 1}')
    old_url = receiver.url
    new_url = receiver.url + "?desk=politics"
    path = tmp_path / "pollerd.toml"
    path.write_text(
        webhook_config(
            tmp_path, upstream, f'kind = "webhook"\nurl = "{old_url}"\nsecret = "first-secret-123"\n'
        )
    )
    async with running(load_config(path)) as (daemon, _):
        await wait_for(lambda: len(receiver.requests) == 1)
        path.write_text(
            webhook_config(
                tmp_path,
                upstream,
                (
                    f'kind = "webhook"\nurl = "{new_url}"\nsecret = "second-secret-456"\nbody = "event"\n'
                    'timeout = "5s"\ninline_max_bytes = "2MiB"\nheaders = { X-Desk = "politics" }\n'
                    'retry_base = "100ms"\nretry_max = "1s"\nmax_attempts = 5\nmax_age = "1h"\n'
                    'coalesce = true\nmax_outbox_bytes = "10MiB"\n'
                ),
            )
        )
        assert await daemon.reload(path)
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: len(receiver.requests) == 2)
        await wait_for(
            lambda: sample(daemon, "pollerd_deliveries_total", sink="hook", outcome="delivered") >= 1
        )
    second = receiver.requests[1]
    assert second.headers["X-Desk"] == "politics"
    assert json.loads(second.body)["payload"] == {"v": 2}  # body = "event"
    assert verify("second-secret-456", second.headers["X-Pollerd-Signature"], second.body)
    assert not verify("first-secret-123", second.headers["X-Pollerd-Signature"], second.body)


async def test_a_sink_removed_and_added_again_delivers_again(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Removed: nothing more for it, the daemon lives on; added again: it gets new versions."""
    upstream.file("/a.json", b'{"v": 1}')
    hook, path = first_delivery_config(tmp_path, upstream, receiver)
    async with running(load_config(path)) as (daemon, _):
        await wait_for(lambda: len(receiver.requests) == 1)
        path.write_text(webhook_config(tmp_path, upstream, hook, named=False))
        assert await daemon.reload(path)
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: (tmp_path / "out/files/a.json/latest.json").read_bytes() == b'{"v": 2}')
        path.write_text(webhook_config(tmp_path, upstream, hook))
        assert await daemon.reload(path)
        upstream.host.publish("/a.json", b'{"v": 3}')
        await wait_for(lambda: len(receiver.requests) == 2)
        await wait_for(lambda: sample(daemon, "pollerd_outbox_depth", sink="hook") == 0)
    assert [r.body for r in receiver.requests] == [b'{"v": 1}', b'{"v": 3}']


async def test_two_reloads_at_once_while_a_poll_is_in_flight(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Two SIGHUPs while the source's poll waits on a slow answer: applied one after the other;
    the source stays scheduled and polled, the sink keeps delivering."""
    upstream.file("/a.json", b'{"v": 1}')
    hook, path = first_delivery_config(tmp_path, upstream, receiver)
    async with running(load_config(path)) as (daemon, _):
        await wait_for(lambda: len(receiver.requests) == 1)
        upstream.host.inject("/a.json", Fault("slow", delay=1.0))
        await wait_for(lambda: upstream.host.in_flight > 0)  # a poll waits on the slow answer
        first = webhook_config(tmp_path, upstream, hook).replace('"200ms"', '"250ms"')
        second = webhook_config(tmp_path, upstream, hook + 'body = "event"\n')
        path.write_text(first)
        one = asyncio.create_task(daemon.reload(path))
        await asyncio.sleep(0)
        path.write_text(second)
        two = asyncio.create_task(daemon.reload(path))
        assert await one and await two
        assert daemon.scheduler.next_run("files") is not None
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: len(receiver.requests) == 2, timeout=30)
    assert json.loads(receiver.requests[1].body)["payload"] == {"v": 2}


async def test_a_daemon_whose_only_sink_changes_keeps_delivering(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """With one sink, replacing it leaves no delivery loop behind to go by: it must start anew."""
    upstream.file("/a.json", b'{"v": 1}')
    path = tmp_path / "pollerd.toml"
    text = (
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nmetrics = "127.0.0.1:0"\n'
        f'[[sources]]\nname = "files"\nkind = "http"\nurls = ["{upstream.url("/a.json")}"]\n'
        f'interval = "200ms"\nsinks = ["hook"]\n[[sinks]]\nname = "hook"\nkind = "webhook"\n'
        f'url = "{receiver.url}"\nsecret = "s3cret-for-the-test"\n'
    )
    path.write_text(text)
    async with running(load_config(path)) as (daemon, _):
        await wait_for(lambda: len(receiver.requests) == 1)
        path.write_text(text + 'body = "event"\n')
        assert await daemon.reload(path)
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: len(receiver.requests) == 2)
    assert json.loads(receiver.requests[1].body)["payload"] == {"v": 2}

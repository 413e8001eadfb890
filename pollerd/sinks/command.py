"""``kind = "command"``: run a program per change: an argv list (never a shell), the payload on
stdin or as a file path, the event in ``POLLERD_*`` environment variables, a timeout after which
the program and its children are killed. Exit 0 acknowledges; anything else is retried."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from contextlib import suppress
from pathlib import Path

import structlog

from pollerd.config import CommandSinkConfig
from pollerd.core.model import Event
from pollerd.sinks.base import DeliveryFailed
from pollerd.versions.payload import Payload

OUTPUT_BYTES = 2000
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


class CommandSink:
    """Runs the configured program once per change."""

    def __init__(self, config: CommandSinkConfig) -> None:
        self.name = config.name
        self._config = config
        self._log = structlog.get_logger("pollerd.command").bind(sink=config.name)

    async def deliver(self, event: Event, version: Payload, epoch: int | None = None) -> None:
        """Run the program; raise DeliveryFailed on a non-zero exit or a timeout."""
        payload = await version.path()
        config = self._config
        argv = [arg.replace("{payload}", str(payload)) for arg in config.command]
        data = await asyncio.to_thread(payload.read_bytes) if config.payload == "stdin" else None
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment(event, payload),
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryFailed(f"cannot start {argv[0]!r}: {exc.strerror}", permanent=True) from None
        try:
            out, err = await asyncio.wait_for(process.communicate(data), timeout=config.timeout)
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            raise DeliveryFailed(f"timed out after {config.timeout:g}s; killed") from None
        except asyncio.CancelledError:
            _kill_group(process.pid)
            raise
        self._log.info(
            "command ran",
            event_id=event.event_id,
            exit=process.returncode,
            stdout=_tail(out),
            stderr=_tail(err),
        )
        if process.returncode != 0:
            raise DeliveryFailed(f"exit {process.returncode}: {_tail(err) or _tail(out)}")

    def _environment(self, event: Event, payload: Path) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update({key: value.get_secret_value() for key, value in self._config.env.items()})
        env.update(
            {
                "POLLERD_EVENT_ID": event.event_id,
                "POLLERD_SOURCE": event.source,
                "POLLERD_RESOURCE": event.resource,
                "POLLERD_SEQUENCE": str(event.sequence),
                "POLLERD_SHA256": event.sha256,
                "POLLERD_SIZE": str(event.size),
                "POLLERD_URL": event.url,
                "POLLERD_CONTENT_TYPE": event.content_type or "",
                "POLLERD_PAYLOAD": str(payload),
                "POLLERD_EVENT": json.dumps(event.to_json()),
            }
        )
        return env

    async def close(self) -> None:
        """Nothing to release."""


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip()
    return text if len(text) <= OUTPUT_BYTES else "…" + text[-OUTPUT_BYTES:]

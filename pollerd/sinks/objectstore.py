"""``kind = "objectstore"``: each version into S3 (or an S3-compatible store) under a versioned key,
then the ``latest`` key, with ``Content-Type``, ``Cache-Control`` (short for ``latest``,
immutable for a version), ``Content-Encoding: gzip`` when asked, and the event as object metadata
or a sidecar ``.event.json``. Large payloads go up in parts, read from the outbox part by part.

With ``format = "csv"`` the objects are the version as the CSV a chart reads (an AP snapshot as
elex's results, only the offices and states asked for; an FSO file as its cantons' table), with
the chosen ``columns``, and ``latest`` is ``no-cache``: a chart that fetches it updates itself.

``latest`` never goes back: an older version redelivered later (a dead letter sent again) is
written under its versioned key only. The client is aiobotocore (botocore's signing and
credential chain: the keys given, else the environment, the shared credentials file, or the
instance role).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from pollerd.config.sinks import ObjectStoreSinkConfig
from pollerd.core.model import Event
from pollerd.core.names import safe_name
from pollerd.core.templates import render
from pollerd.results.chart_csv import ap_chart_csv, fso_chart_csv
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.filesystem import version_stem
from pollerd.versions.payload import Payload
from pollerd.versions.snapshot import SnapshotReading

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

# a refusal no retry will change: dead-letter at once, with the reason
PERMANENT = frozenset(
    {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName"}
)
DETECTED = "pollerd-detected-at"


class ObjectStoreSink:
    """Writes every version and the ``latest`` object of each resource to one bucket."""

    def __init__(self, config: ObjectStoreSinkConfig, state_dir: Path, user_agent: str) -> None:
        self.name = config.name
        self._config = config
        self._spool = state_dir / "sinks" / safe_name(config.name)
        self._user_agent = user_agent
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None

    async def deliver(self, event: Event, version: Payload, epoch: int | None = None) -> None:
        """Put the version (or its chart CSV), then ``latest`` if this version is the newest;
        DeliveryFailed (permanent for a refusal such as AccessDenied) when the store did not take
        it."""
        made: list[Path] = []  # files this delivery writes (a CSV, a gzipped copy), removed after
        if self._config.format == "csv":
            chart = await self._chart(event, version)
            if chart is None:
                return  # a payload no chart table is made of (an AP delta, a Democracy Club answer)
            made.append(chart)
            payload, ext, content_type = chart, "csv", "text/csv; charset=utf-8"
        else:
            payload, ext = await version.path(), event.extension
            content_type = event.content_type or "application/octet-stream"
        keys = self._config.keys_of(event.source, event.resource)
        fields = _fields(event) | {"ext": ext}
        version_key = self._config.prefix + render(keys.key, fields)
        latest_key = self._config.prefix + render(keys.latest_key, fields)
        try:
            body = payload
            if self._config.gzip:
                body = await asyncio.to_thread(self._gzipped, payload, event)
                made.append(body)
            client = await self._s3()
            await self._put(
                client, version_key, body, event, content_type, self._config.version_cache_control
            )
            if await _newest(client, self._config.bucket, latest_key, event):
                await self._put(
                    client, latest_key, body, event, content_type, self._config.latest_cache_control
                )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise DeliveryFailed(
                f"{self._config.bucket}: {code or 'refused'}", permanent=code in PERMANENT
            ) from None
        except BotoCoreError as exc:
            raise DeliveryFailed(f"{self._config.bucket}: {type(exc).__name__}") from None
        finally:
            for path in made:
                path.unlink(missing_ok=True)

    async def _chart(self, event: Event, version: Payload) -> Path | None:
        """The version's chart CSV in the sink's spool folder (None: no chart table of it)."""
        config, reading = self._config, await version.reading()
        if isinstance(reading, SnapshotReading):
            csv: bytes | None = await asyncio.to_thread(
                ap_chart_csv,
                reading.election_date,
                reading.races,
                config.columns,
                config.offices,
                config.states,
            )
        else:
            csv = await asyncio.to_thread(fso_chart_csv, reading, config.columns, config.cantons)
        if csv is None:
            return None
        target = self._spool / f"{event.event_id}.csv"
        await asyncio.to_thread(_write, target, csv)
        return target

    async def close(self) -> None:
        """Close the client."""
        await self._stack.aclose()

    async def _s3(self) -> S3Client:
        if self._client is None:
            config = self._config
            session = get_session()
            if config.profile:
                session.set_config_variable("profile", config.profile)
            client = await self._stack.enter_async_context(
                session.create_client(
                    "s3",
                    region_name=config.region,
                    endpoint_url=config.endpoint,
                    aws_access_key_id=_value(config.access_key_id),
                    aws_secret_access_key=_value(config.secret_access_key),
                    config=AioConfig(
                        user_agent_extra=self._user_agent,
                        connect_timeout=config.timeout,
                        read_timeout=config.timeout,
                        retries={"max_attempts": 1},  # the outbox retries, with its own backoff
                    ),
                )
            )
            self._client = client
        return self._client

    async def _put(
        self, client: S3Client, key: str, body: Path, event: Event, content_type: str, cache: str
    ) -> None:
        """The object (in parts above ``multipart_threshold``), then its sidecar event if asked."""
        options: dict[str, Any] = {
            "Bucket": self._config.bucket,
            "Key": key,
            "ContentType": content_type,
            "CacheControl": cache,
            "Metadata": _metadata(event),
        }
        if self._config.gzip:
            options["ContentEncoding"] = "gzip"
        size = await asyncio.to_thread(lambda: body.stat().st_size)
        if size <= self._config.multipart_threshold:
            await client.put_object(Body=await asyncio.to_thread(body.read_bytes), **options)
        else:
            await self._put_parts(client, body, size, options)
        if self._config.event == "sidecar":
            sidecar = json.dumps(event.to_json(), ensure_ascii=False).encode()
            await client.put_object(
                Bucket=self._config.bucket,
                Key=f"{key}.event.json",
                Body=sidecar,
                ContentType="application/json",
                CacheControl=cache,
            )

    async def _put_parts(self, client: S3Client, body: Path, size: int, options: dict[str, Any]) -> None:
        """A multipart upload, one part read at a time (memory: one part), aborted on failure."""
        part_size = self._config.multipart_threshold
        upload = await client.create_multipart_upload(**options)
        upload_id = upload["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        try:
            for number, offset in enumerate(range(0, size, part_size), start=1):
                chunk = await asyncio.to_thread(_read, body, offset, part_size)
                answer = await client.upload_part(
                    Bucket=options["Bucket"],
                    Key=options["Key"],
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=options["Bucket"],
                Key=options["Key"],
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await asyncio.shield(
                client.abort_multipart_upload(
                    Bucket=options["Bucket"], Key=options["Key"], UploadId=upload_id
                )
            )
            raise

    def _gzipped(self, payload: Path, event: Event) -> Path:
        """The payload gzipped into the sink's spool folder (streamed: any size)."""
        self._spool.mkdir(parents=True, exist_ok=True)
        target = self._spool / f"{event.event_id}.gz"
        with payload.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(source, packed, 1024 * 1024)
        return target


async def _newest(client: S3Client, bucket: str, key: str, event: Event) -> bool:
    """Whether ``event`` is at least as new as what ``latest`` holds (by detection time)."""
    try:
        head = await client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return True
        raise
    stamp = head.get("Metadata", {}).get(DETECTED)
    try:
        return stamp is None or event.detected_at >= datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True


def _write(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)


def _fields(event: Event) -> dict[str, Any]:
    return {
        "source": safe_name(event.source),
        "resource": safe_name(event.resource),
        "version": version_stem(event),
        "sequence": event.sequence,
        "sha256": event.sha256,
        "ext": event.extension,
    }


def _metadata(event: Event) -> dict[str, str]:
    """The event as S3 user metadata (ASCII, a few fields: the whole event is the sidecar's)."""
    return {
        "pollerd-event-id": event.event_id,
        "pollerd-source": event.source.encode("ascii", "replace").decode(),
        "pollerd-resource": event.resource.encode("ascii", "replace").decode(),
        "pollerd-sequence": str(event.sequence),
        "pollerd-sha256": event.sha256,
        DETECTED: event.detected_at.isoformat().replace("+00:00", "Z"),
        "pollerd-election-events": str(len(event.election)),
    }


def _read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(size)


def _value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()

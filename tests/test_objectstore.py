"""The objectstore sink against a real S3-compatible server the tests start on 127.0.0.1 (moto's
standalone server): every version and ``latest`` with their headers, gzip, the event as metadata or
sidecar, multipart for large payloads, ``latest`` never going back, refusals dead-lettered."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # (moto brings it; only reads the bucket back)
import pytest
from moto.server import ThreadedMotoServer

from pollerd.config import ConfigError, ObjectStoreSinkConfig, parse_config
from pollerd.results.chart_csv import FSO_VOTE_COLUMNS
from pollerd.results.elex import results_rows, to_csv
from pollerd.sim.ap import ApServer
from pollerd.sim.fso_vote import VoteDay
from pollerd.sim.server import SimServer
from pollerd.sinks import DeliveryFailed
from pollerd.sinks.objectstore import ObjectStoreSink
from pollerd.versions.payload import Payload
from tests.conftest import Upstream, ap_source, one_source, opened, vote_source
from tests.test_store_queries import event

KEYS = {"access_key_id": "AKIDEXAMPLE1234", "secret_access_key": "s3-secret-for-the-test"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh bucket (named after the test) and a boto3 client to read it."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
    )
    name = request.node.name.replace("_", "-")[:50].lower().strip("-")
    client.create_bucket(Bucket=name)
    yield client, name


def sink_table(endpoint: str, bucket: str, **keys: Any) -> dict[str, Any]:
    """An objectstore sink table."""
    return {
        "name": "cdn",
        "kind": "objectstore",
        "bucket": bucket,
        "endpoint": endpoint,
        "region": "us-east-1",
        "prefix": "night/",
        **KEYS,
        **keys,
    }


async def objects(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object of the bucket: key -> its head and body."""

    def read() -> dict[str, dict[str, Any]]:
        found = {}
        for entry in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            answer = client.get_object(Bucket=bucket, Key=entry["Key"])
            found[entry["Key"]] = {**answer, "bytes": answer["Body"].read()}
        return found

    return await asyncio.to_thread(read)


async def test_every_version_then_latest_with_headers(
    upstream: Upstream, tmp_path: Path, s3_endpoint: str, bucket: Any
) -> None:
    """Three versions of a file: each under its versioned key (immutable), latest equal to the
    last (max-age=5), gzip-encoded, with its sidecar event; the keys never reach the logs."""
    client, name = bucket
    url = upstream.file("/results.json", b'{"v": 1}')
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [{"name": "files", "kind": "http", "urls": [url], "sinks": ["cdn"]}],
        "sinks": [sink_table(s3_endpoint, name, gzip=True, event="sidecar")],
    }
    async with opened(parse_config(raw)) as daemon:
        for version in (1, 2, 3):
            upstream.host.publish("/results.json", json.dumps({"v": version}).encode())
            assert await daemon.run_once()
    found = await objects(client, name)
    versions = sorted(
        k
        for k in found
        if k.startswith("night/files/results.json/2")
        and k.endswith(".json")
        and not k.endswith(".event.json")
    )
    assert len(versions) == 3
    assert [json.loads(gzip.decompress(found[k]["bytes"])) for k in versions] == [
        {"v": 1},
        {"v": 2},
        {"v": 3},
    ]
    latest = found["night/files/results.json/latest.json"]
    assert gzip.decompress(latest["bytes"]) == b'{"v": 3}'
    assert (latest["ContentType"], latest["ContentEncoding"], latest["CacheControl"]) == (
        "application/json",
        "gzip",
        "max-age=5",
    )
    assert found[versions[0]]["CacheControl"] == "public, max-age=31536000, immutable"
    sidecar = json.loads(found["night/files/results.json/latest.json.event.json"]["bytes"])
    assert sidecar["sequence"] == 3 and latest["Metadata"]["pollerd-event-id"] == sidecar["event_id"]


async def test_a_large_payload_goes_up_in_parts(tmp_path: Path, s3_endpoint: str, bucket: Any) -> None:
    """Above multipart_threshold the payload is uploaded in parts, read one part at a time; the
    object is byte for byte the payload."""
    client, name = bucket
    config = ObjectStoreSinkConfig.model_validate(sink_table(s3_endpoint, name, multipart_threshold="5MiB"))
    sink = ObjectStoreSink(config, tmp_path, "pollerd-test")
    payload = tmp_path / "big.bin"
    payload.write_bytes(bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7))
    try:
        await sink.deliver(event("big.bin", 1, "b" * 64), Payload(payload))
    finally:
        await sink.close()
    found = await objects(client, name)
    assert found["night/src/big.bin/latest.json"]["bytes"] == payload.read_bytes()
    assert "-" in found["night/src/big.bin/latest.json"]["ETag"]  # a multipart upload's ETag


async def test_latest_never_goes_back_and_redelivery_changes_nothing(
    tmp_path: Path, s3_endpoint: str, bucket: Any
) -> None:
    """An older version delivered after a newer one (a dead letter sent again) lands under its
    own key only; delivering the same event twice leaves the same objects."""
    client, name = bucket
    config = ObjectStoreSinkConfig.model_validate(sink_table(s3_endpoint, name))
    sink = ObjectStoreSink(config, tmp_path, "pollerd-test")
    old_payload, new_payload = tmp_path / "old.json", tmp_path / "new.json"
    old_payload.write_bytes(b'{"v": 1}')
    new_payload.write_bytes(b'{"v": 2}')
    old = event("r", 1, "a" * 64)
    new = replace(event("r", 2, "c" * 64), detected_at=old.detected_at + timedelta(seconds=5))
    try:
        await sink.deliver(new, Payload(new_payload))
        before = await objects(client, name)
        await sink.deliver(new, Payload(new_payload))
        assert {k: v["bytes"] for k, v in (await objects(client, name)).items()} == {
            k: v["bytes"] for k, v in before.items()
        }
        await sink.deliver(old, Payload(old_payload))
    finally:
        await sink.close()
    found = await objects(client, name)
    assert found["night/src/r/latest.json"]["bytes"] == b'{"v": 2}'
    assert len(found) == 3  # two versions and latest


async def test_a_missing_bucket_is_dead_lettered_at_once(tmp_path: Path, s3_endpoint: str) -> None:
    """NoSuchBucket is a refusal no retry changes: permanent, with the reason, no key in it."""
    config = ObjectStoreSinkConfig.model_validate(sink_table(s3_endpoint, "no-such-bucket"))
    sink = ObjectStoreSink(config, tmp_path, "pollerd-test")
    payload = tmp_path / "p.json"
    payload.write_bytes(b"{}")
    try:
        with pytest.raises(DeliveryFailed) as caught:
            await sink.deliver(event("r", 1, "a" * 64), Payload(payload))
    finally:
        await sink.close()
    assert caught.value.permanent and "NoSuchBucket" in str(caught.value)
    assert KEYS["secret_access_key"] not in str(caught.value)


CHART = ["statepostal", "reportingunitname", "last", "votecount", "votepct"]


async def test_a_chart_csv_per_ap_version_filtered_with_its_columns(
    ap: tuple[ApServer, str], tmp_path: Path, s3_endpoint: str, bucket: Any
) -> None:
    """``format = "csv"`` on an AP source: each version as elex's results CSV, only
    Pennsylvania's Senate race, five columns, under the CSV's own keys; ``latest`` no-cache and
    equal to the newest snapshot's rows (read from the filesystem sink's copy of it)."""
    client, name = bucket
    replay, base = ap
    keys = {"key": "charts/{resource}/{sequence}.{ext}", "latest_key": "charts/{resource}.{ext}"}
    sink = sink_table(s3_endpoint, name, format="csv", columns=CHART, states=["PA"], offices=["S"], keys=keys)
    files = {"name": "files", "kind": "filesystem", "root": str(tmp_path / "out")}
    source = ap_source(base, ["cdn", "files"], queries=[{"name": "all", "level": "ru"}])
    async with opened(one_source(tmp_path, source, [sink, files])) as daemon:
        for _ in range(3):
            assert await daemon.run_once()
            replay.election.advance(10)
    found = await objects(client, name)
    latest = found["night/charts/all.csv"]
    assert (latest["ContentType"], latest["CacheControl"]) == ("text/csv; charset=utf-8", "no-cache")
    versions = sorted(k for k in found if k.startswith("night/charts/all/"))
    assert len(versions) == 3 and found[versions[0]]["CacheControl"] == "public, max-age=31536000, immutable"
    snapshot = json.loads((tmp_path / "out" / "ap" / "all" / "latest.json").read_bytes())
    expected = [
        [row[c] for c in CHART]
        for row in csv.DictReader(io.StringIO(to_csv(results_rows(snapshot)).decode()))
        if row["statepostal"] == "PA" and row["officeid"] == "S"
    ]
    table = list(csv.reader(io.StringIO(latest["bytes"].decode())))
    assert table[0] == CHART and table[1:] == expected and len(expected) > 1


async def test_a_chart_csv_of_an_fso_vote_file(tmp_path: Path, s3_endpoint: str, bucket: Any) -> None:
    """An FSO vote file as one row per proposal and canton, Zürich and Bern only."""
    client, name = bucket
    server = SimServer()
    day = VoteDay()
    await day.open(server)
    source = vote_source(day.api_url, ["cdn"])
    sink = sink_table(s3_endpoint, name, format="csv", cantons=[1, 2])
    try:
        async with opened(one_source(tmp_path, source, [sink])) as daemon:
            day.report(40)
            assert await daemon.run_once()
    finally:
        await server.close()
    found = await objects(client, name)
    (key,) = [k for k in found if k.endswith("/latest.csv")]
    table = list(csv.DictReader(io.StringIO(found[key]["bytes"].decode())))
    assert list(table[0]) == list(FSO_VOTE_COLUMNS)
    assert {(row["vorlage"], row["kanton"]) for row in table} == {
        (title, canton)
        for title in (
            "Stromgesetz",
            "Initiative für bezahlbare Mieten",
            "Gegenentwurf für bezahlbare Mieten",
            "Stichfrage: Initiative oder Gegenentwurf?",
        )
        for canton in ("Zürich", "Bern")
    }


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"columns": ["votecount"]}, 'set format = "csv"'),
        ({"format": "csv", "columns": ["votes"]}, "no table has a column 'votes'"),
    ],
)
def test_chart_columns_are_checked_at_start(keys: dict[str, Any], message: str, tmp_path: Path) -> None:
    raw = {
        "daemon": {"state_dir": str(tmp_path)},
        "sources": [{"name": "s", "kind": "http", "urls": ["https://example.org/a.json"], "sinks": ["cdn"]}],
        "sinks": [sink_table("http://127.0.0.1:9", "bucket", **keys)],
    }
    with pytest.raises(ConfigError, match=f"sinks.0.*{re.escape(message)}|{re.escape(message)}"):
        parse_config(raw)

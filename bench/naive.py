"""The obvious poller the night benchmark compares pollerd with: every interval, read the package's
URLs from CKAN and GET every file; a new sha256 is a change. Prints one JSON line per change."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time

import aiohttp


async def main(api: str, package: str, interval: float) -> None:
    """Poll until killed."""
    seen: dict[str, str] = {}
    async with aiohttp.ClientSession(headers={"User-Agent": "naive-poller/1"}) as session:
        while True:
            started = time.monotonic()
            try:
                async with session.get(f"{api}/package_show", params={"id": package}) as answer:
                    resources = (await answer.json())["result"]["resources"]
                for resource in resources:
                    async with session.get(resource["url"].strip()) as response:
                        body = await response.read()
                    if response.status != 200:
                        continue
                    digest = hashlib.sha256(body).hexdigest()
                    if seen.get(resource["id"]) != digest:
                        seen[resource["id"]] = digest
                        print(
                            json.dumps(
                                {"resource": resource["id"], "sha256": digest, "detected_at": time.time()}
                            ),
                            flush=True,
                        )
            except (aiohttp.ClientError, ValueError, KeyError) as exc:
                print(json.dumps({"error": type(exc).__name__}), file=sys.stderr, flush=True)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.api, args.package, args.interval))

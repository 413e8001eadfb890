"""A file host for the scale and big-file benchmarks, in its own process so that its CPU and
memory are not pollerd's. ``--count N``: N small JSON files with ETag and Last-Modified, 1% of them
changing every ``--every`` seconds. ``--file PATH``: one file served from disk (aiohttp sets the
validators from its size and mtime). Prints the port, then serves until killed."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path

from aiohttp import web

from pollerd.sim import FileHost, SimServer


async def serve_many(count: int, every: float, fraction: float) -> None:
    """N files; a fraction of them changes every ``every`` seconds."""
    host = FileHost()
    for n in range(count):
        host.add(f"/r{n}.json", keep=1, gzip_encoding=False)
        host.publish(f"/r{n}.json", f'{{"resource": {n}, "version": 0}}'.encode(), at=time.time() - 60)
    base = await SimServer().serve(host.app())
    print(base.rsplit(":", 1)[1], flush=True)
    rng = random.Random(1)
    version = 0
    while True:
        await asyncio.sleep(every)
        version += 1
        for n in rng.sample(range(count), max(1, int(count * fraction))):
            host.publish(f"/r{n}.json", f'{{"resource": {n}, "version": {version}}}'.encode())


async def serve_file(path: Path) -> None:
    """One file from disk at /big.bin."""
    app = web.Application()

    async def big(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app.router.add_get("/big.bin", big)
    base = await SimServer().serve(app)
    print(base.rsplit(":", 1)[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    asyncio.run(serve_file(args.file) if args.file else serve_many(args.count, args.every, args.fraction))

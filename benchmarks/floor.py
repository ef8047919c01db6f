"""The floors the end-to-end benchmarks compare against: bare httpx loops, each run in a fresh process.

A floor runs in its own process, never inside the benchmark driver: the driver holds a whole tenant's JSON in
memory (millions of objects), and the cyclic garbage collector's passes over them slowed an in-driver floor
2.8-fold at 100,000 users (2.70 s against 0.96 s in a fresh process), which flattered every ratio.

    python benchmarks/floor.py read URL [--select S]             # GET /organization, /subscribedSkus, every /users page
    python benchmarks/floor.py write URL REQUESTS.json [--parallelism 4]   # POST them as $batch bodies of 20

Prints one JSON object: loop_s (the loop alone, after imports), cpu_s (this process's CPU in the loop), and counts.
The parent also times the whole process (interpreter start-up and `import httpx` included), the like-for-like
comparison with `provision plan`, which is a process too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def read_floor(url: str, select: str) -> dict[str, Any]:
    """Fetch /organization, /subscribedSkus and every /users page ($top=999), parsing each JSON body.

    One keep-alive connection, like the SDK's client; pages one after another (Graph pages only sequentially).
    """
    cpu, start = time.process_time(), time.perf_counter()
    users = pages = 0
    with httpx.Client(timeout=120) as client:
        client.get(f"{url}/organization").raise_for_status().json()
        client.get(f"{url}/subscribedSkus").raise_for_status().json()
        next_url: str | None = f"{url}/users"
        params: dict[str, str] | None = {"$select": select, "$top": "999"}
        while next_url:
            body = client.get(next_url, params=params).raise_for_status().json()
            params = None  # the nextLink carries the query
            users += len(body.get("value", []))
            pages += 1
            next_url = body.get("@odata.nextLink")
    return {"loop_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu, "pages": pages + 2,
            "users": users}


async def _post_batches(url: str, bodies: list[dict[str, Any]], parallelism: int) -> float:
    sem = asyncio.Semaphore(parallelism)
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=parallelism)) as client:

        async def one(body: dict[str, Any]) -> None:
            async with sem:
                r = await client.post(f"{url}/$batch", json=body)
                r.raise_for_status()
                statuses = [resp["status"] for resp in r.json()["responses"]]
                if any(s >= 300 for s in statuses):
                    raise RuntimeError(f"floor batch had failures: {sorted(set(statuses))}")

        # Untimed warm-up: open the connections (and the emulator's first-request paths), as the apply measured
        # beside this floor reuses connections its planning reads opened.
        warm = await asyncio.gather(*(client.get(f"{url}/organization") for _ in range(parallelism)))
        for w in warm:
            w.raise_for_status()
        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - start


def write_floor(url: str, requests: list[dict[str, Any]], parallelism: int) -> dict[str, Any]:
    """Post `requests` as $batch bodies of 20 with `parallelism` in flight."""
    bodies = [{"requests": [{**r, "id": str(i + 1)} for i, r in enumerate(requests[k:k + 20])]}
              for k in range(0, len(requests), 20)]
    cpu = time.process_time()
    loop_s = asyncio.run(_post_batches(url, bodies, parallelism))
    return {"loop_s": loop_s, "cpu_s": time.process_time() - cpu, "batches": len(bodies)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("read")
    r.add_argument("url")
    r.add_argument("--select", required=True)
    w = sub.add_parser("write")
    w.add_argument("url")
    w.add_argument("requests", type=Path)
    w.add_argument("--parallelism", type=int, default=4)
    a = ap.parse_args(argv)
    if a.what == "read":
        result = read_floor(a.url, a.select)
    else:
        result = write_floor(a.url, json.loads(a.requests.read_text()), a.parallelism)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

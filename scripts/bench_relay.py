#!/usr/bin/env python3
"""Relay benchmark: validated posts per second and query latency (p50/p99) with 10k and 100k offers in the
book, on SQLite and PostgreSQL (the latter when its binaries are installed). Called by scripts/bench.py;
runs alone too (``python scripts/bench_relay.py --sizes 10000``).

Set-up per (database, size): an anvil with the suite; ``size`` signed offers (200 makers, 100 resources,
random prices) written straight into a fresh database through the relay's own Store (preloading through
HTTP would only time the same post path longer); then a relay process (uvicorn, rate limits off).

* posts/s: ``--posts`` fresh signed offers, posted over HTTP by 16 concurrent connections; each one
  goes through the full door validation (parse, EIP-712 hash, signature recovery, counter, chain state)
  and is committed before its 201. Signing happens before the clock starts.
* batch posts/s: another ``--posts`` offers through ``POST /offers/batch`` (100 per request, 4 connections):
  the same validation and commit per offer, one HTTP round trip per hundred.
* query latency: ``--queries`` sequential ``GET /offers?resource=..&side=sell&max_price=..&limit=50``
  (random resource and price bound), timed at the client, end to end over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from agentmarket.chain import Chain  # noqa: E402
from agentmarket.clients.offers import Offer, OffersClient, Side, SignedOffer, resource_id  # noqa: E402
from agentmarket.deploy import deploy_suite  # noqa: E402
from agentmarket.eip712 import sign_digest  # noqa: E402
from agentmarket.relay.db import open_db  # noqa: E402
from agentmarket.relay.pgserver import PostgresServer, pg_bindir  # noqa: E402
from agentmarket.relay.process import RelayProcess  # noqa: E402
from agentmarket.relay.store import Store, offer_row  # noqa: E402

RESOURCES = [resource_id(f"bench/resource-{i}") for i in range(100)]


def signed_offers(
    book: OffersClient, n: int, keys: list[Any], rng: random.Random, expiry: int
) -> list[SignedOffer]:
    out = []
    for _ in range(n):
        key = rng.choice(keys)
        offer = Offer(
            maker=key.address,
            side=Side.SELL,
            resource_id=rng.choice(RESOURCES),
            unit_price=rng.randrange(10**12, 10**15),
            quantity=rng.randrange(1, 100),
            expiry=expiry,
            delivery_seconds=rng.choice((60, 600, 3600)),
            salt=secrets.randbits(128),
        )
        out.append(SignedOffer(offer, sign_digest(key, offer.digest(book.domain)), book.domain))
    return out


async def _post_batches(url: str, bodies: list[str], batch: int, concurrency: int) -> tuple[float, int]:
    import httpx

    chunks = ['{"offers":[' + ",".join(bodies[i : i + batch]) + "]}" for i in range(0, len(bodies), batch)]
    queue = list(reversed(chunks))
    ok = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal ok
        while queue:
            r = await http.post(
                "/offers/batch", content=queue.pop(), headers={"content-type": "application/json"}
            )
            statuses = [item["status"] for item in r.json()["results"]]
            if r.status_code != 200 or any(st != 201 for st in statuses):
                raise RuntimeError(f"batch refused: {r.status_code} {r.text[:200]}")
            ok += len(statuses)

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return time.perf_counter() - start, ok


async def _post_all(url: str, bodies: list[str], concurrency: int) -> tuple[float, int]:
    import httpx

    queue = list(reversed(bodies))
    ok = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal ok
        while queue:
            body = queue.pop()
            r = await http.post("/offers", content=body, headers={"content-type": "application/json"})
            if r.status_code != 201:
                raise RuntimeError(f"post refused: {r.status_code} {r.text[:200]}")
            ok += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return time.perf_counter() - start, ok


def _queries(url: str, n: int, rng: random.Random) -> list[float]:
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(n):
            params = {
                "resource": "0x" + rng.choice(RESOURCES).hex(),
                "side": "sell",
                "max_price": str(rng.randrange(10**14, 10**15)),
                "limit": "50",
            }
            start = time.perf_counter()
            r = http.get("/offers", params=params)
            times.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200 or not json.loads(r.content)["offers"]:
                raise RuntimeError(f"query failed or empty: {r.status_code}")
    return times


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): what the relay itself spent, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(db_url: str, size: int, posts: int, queries: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    chain = Chain.anvil(accounts=2)
    try:
        suite = deploy_suite(chain, write=False, reuse=False)
        book = OffersClient.from_suite(suite)
        keys = [Account.from_key(rng.randbytes(32)) for _ in range(200)]
        expiry = chain.now() + 10 * 86_400
        store = Store(open_db(db_url))
        for i in range(0, size, 5_000):  # preload through the relay's Store, in 5k-row transactions
            batch = signed_offers(book, min(5_000, size - i), keys, rng, expiry)
            store.insert_offers([offer_row(s, filled=0, cancelled=False, posted_by="bench") for s in batch])
        store.engine.dispose()
        bodies = [s.to_json() for s in signed_offers(book, posts, keys, rng, expiry)]
        batch_bodies = [s.to_json() for s in signed_offers(book, posts, keys, rng, expiry)]
        args = ["--client-rate", "0", "--maker-rate", "0"]
        with RelayProcess(db_url, str(chain.url), book.address, extra=args) as relay:
            asyncio.run(_post_all(relay.url, bodies[:50], 8))  # warm-up (connections, caches)
            assert relay.proc is not None
            cpu = _cpu_seconds(relay.proc.pid)
            seconds, ok = asyncio.run(_post_all(relay.url, bodies[50:], 16))
            cpu = _cpu_seconds(relay.proc.pid) - cpu
            batch_seconds, batch_ok = asyncio.run(_post_batches(relay.url, batch_bodies, 100, 4))
            _queries(relay.url, 20, rng)  # warm-up
            lat = sorted(_queries(relay.url, queries, rng))
        return {
            "posts_per_s": round(ok / seconds, 1),
            "posts_per_cpu_s": round(ok / cpu, 1),  # posts per second of the relay's own CPU time
            "batch_posts_per_s": round(batch_ok / batch_seconds, 1),  # POST /offers/batch, 100 per request
            "query_p50_ms": round(statistics.median(lat), 2),
            "query_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        }
    finally:
        chain.close()


def run(sizes: list[int], posts: int = 2_000, queries: int = 400, log: Any = print) -> dict[str, Any]:
    """All (database, size) cells; flat keys ``relay.<db>.<size>.<metric>`` plus the headline keys
    ``relay.posts_per_s`` / ``relay.query_p50_ms`` / ``relay.query_p99_ms``: the worst database at the
    largest size."""
    results: dict[str, Any] = {}
    pg = PostgresServer().start() if pg_bindir() else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                dbs = {"sqlite": f"sqlite:///{tmp}/bench{size}.db"}
                if pg is not None:
                    dbs["postgres"] = pg.new_database(f"bench{size}")
                for kind, url in dbs.items():
                    cell = run_one(url, size, posts, queries)
                    label = f"{size // 1000}k"
                    for metric, value in cell.items():
                        results[f"relay.{kind}.{label}.{metric}"] = value
                    log(f"relay {kind:<8} {label:>5} offers: {cell}")
    finally:
        if pg is not None:
            pg.stop()
    top = f"{max(sizes) // 1000}k"
    cells = [k for k in results if f".{top}." in k]
    results["relay.posts_per_cpu_s"] = min(results[k] for k in cells if k.endswith("posts_per_cpu_s"))
    results["relay.posts_per_s"] = min(results[k] for k in cells if k.endswith(".posts_per_s"))
    results["relay.batch_posts_per_s"] = min(results[k] for k in cells if k.endswith(".batch_posts_per_s"))
    results["relay.query_p50_ms"] = max(results[k] for k in cells if k.endswith("query_p50_ms"))
    results["relay.query_p99_ms"] = max(results[k] for k in cells if k.endswith("query_p99_ms"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="book sizes, comma-separated")
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args()
    results = run([int(s) for s in args.sizes.split(",")], args.posts, args.queries)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Relay benchmark: validated posts per second and query latency (p50/p99) with 10k and 100k offers in the
book, on SQLite and PostgreSQL (the latter when its binaries are installed). Called by scripts/bench.py;
runs alone too (``python scripts/bench_relay.py --sizes 10000``).

Set-up per (database, size): an anvil with the suite; ``size`` signed offers (200 makers, 100 resources,
random prices) written straight into a fresh database through the relay's bulk import
(``Store.import_offers``: 5k-row transactions, then ``VACUUM (ANALYZE)`` on PostgreSQL, ``ANALYZE`` on
SQLite, as an operator does after any bulk load; preloading through HTTP would only time the same post
path longer); then a relay process (uvicorn, rate limits off).

* posts/s: ``--posts`` fresh signed offers, posted over HTTP by ``--concurrency`` keep-alive connections
  (a raw asyncio client, in ``--rounds`` bursts: median and range); each one
  goes through the full door validation (parse, EIP-712 hash, signature recovery, counter, chain state)
  and is committed before its 201. Signing happens before the clock starts.
* batch posts/s: another ``--posts`` offers through ``POST /offers/batch`` (100 per request, 4 connections):
  the same validation and commit per offer, one HTTP round trip per hundred.
* query latency: ``--queries`` sequential ``GET /offers?resource=..&side=sell&max_price=..&limit=50``
  (random resource and price bound), timed at the client, end to end over HTTP.
* CPU figures (independent of what else runs on the machine): posts_per_cpu_s and query_server_cpu_ms
  count the relay process and, on PostgreSQL, the database server (postmaster and backends) too.
  query_server_cpu_net_ms subtracts the servers' idle CPU rate (the indexer's polling), measured for 3 s
  before the queries, over each round's duration. ``load_avg_1m`` / ``load_avg_1m_end``: the machine's
  load average when a cell starts and ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection that sends prebuilt POST requests one after the other and reads
    just the status line and Content-Length of each answer: a load generator that costs the bench process
    a few microseconds per request, so the relay's figure is not capped by its client."""

    def __init__(self, requests: list[bytes], done: asyncio.Future[None], statuses: list[int]):
        self.requests, self.done, self.statuses = requests, done, statuses
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if not self.requests:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.transport.write(self.requests.pop())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            if len(self.buf) < end + 4 + length:
                return
            self.statuses.append(int(self.buf[9:12]))
            self.buf = self.buf[end + 4 + length :]
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _post_all(url: str, bodies: list[str], concurrency: int) -> tuple[float, int]:
    """POST every body to /offers over ``concurrency`` keep-alive connections; (seconds, 201 answers)."""
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    reqs = [
        (
            f"POST /offers HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b.encode())}\r\n\r\n{b}"
        ).encode()
        for b in bodies
    ]
    shares = [list(reversed(reqs[i::concurrency])) for i in range(concurrency)]
    statuses: list[int] = []
    start = time.perf_counter()
    done = []
    for share in shares:
        fut: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda s=share, f=fut: _Conn(s, f, statuses), host, int(port))
        done.append(fut)
    await asyncio.gather(*done)
    seconds = time.perf_counter() - start
    refused = [st for st in statuses if st != 201]
    if refused or len(statuses) != len(bodies):
        raise RuntimeError(f"{len(refused)} posts refused ({sorted(set(refused))}), {len(statuses)} answered")
    return seconds, len(statuses)


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


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time of a server process and its children, live (``/proc/<pid>/task/*/children``) and reaped
    (cutime/cstime): for PostgreSQL the postmaster and every backend, i.e. the database's share of a post."""
    total = _cpu_seconds(pid)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += _tree_cpu_seconds(int(child))
            except FileNotFoundError:  # a backend that exited since the listing
                continue
    return total


def _autovacuum_runs(db_url: str) -> int | None:
    """PostgreSQL: autovacuum plus autoanalyze runs so far on the ``offers`` table (None on SQLite)."""
    if not db_url.startswith("postgresql"):
        return None
    import psycopg

    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT autovacuum_count + autoanalyze_count FROM pg_stat_user_tables WHERE relname = 'offers'"
        ).fetchone()
    return int(row[0]) if row else 0


def _median_range(values: list[float], digits: int = 1) -> tuple[float, list[float]]:
    return round(statistics.median(values), digits), [round(min(values), digits), round(max(values), digits)]


def run_one(
    db_url: str,
    size: int,
    posts: int,
    queries: int,
    *,
    rounds: int = 5,
    concurrency: int = 64,
    batch: bool = True,
    seed: int = 1,
    db_pid: int | None = None,
) -> dict[str, Any]:
    """One (database, size) cell: ``posts`` single posts in ``rounds`` bursts over ``concurrency``
    keep-alive connections, then ``posts`` more through /offers/batch, then ``queries`` GETs in
    ``rounds`` groups. Rates and p99: median over the rounds, with their range."""
    rng = random.Random(seed)
    chain = Chain.anvil(accounts=2)
    try:
        suite = deploy_suite(chain, write=False, reuse=False)
        book = OffersClient.from_suite(suite)
        keys = [Account.from_key(rng.randbytes(32)) for _ in range(200)]
        expiry = chain.now() + 10 * 86_400
        store = Store(open_db(db_url))
        # preload through the relay's bulk import (5k-row transactions, then VACUUM ANALYZE / ANALYZE)
        store.import_offers(
            offer_row(s, filled=0, cancelled=False, posted_by="bench")
            for i in range(0, size, 5_000)
            for s in signed_offers(book, min(5_000, size - i), keys, rng, expiry)
        )
        store.engine.dispose()
        warm = [s.to_json() for s in signed_offers(book, 100, keys, rng, expiry)]
        bodies = [s.to_json() for s in signed_offers(book, posts, keys, rng, expiry)]
        batch_bodies = [s.to_json() for s in signed_offers(book, posts if batch else 0, keys, rng, expiry)]
        args = ["--client-rate", "0", "--maker-rate", "0"]
        rates, cpu_rates = [], []
        with contextlib.ExitStack() as stack:
            # a generous start-up deadline: imports alone take tens of seconds on a loaded machine
            relay = RelayProcess(db_url, str(chain.url), book.address, extra=args).start(timeout=300)
            stack.callback(relay.stop)
            assert relay.proc is not None
            asyncio.run(_post_all(relay.url, warm, 8))  # warm-up (connections, caches)
            pids = [relay.proc.pid] + ([db_pid] if db_pid else [])

            def server_cpu() -> float:  # the relay plus, on PostgreSQL, the database server
                return sum(_tree_cpu_seconds(p) if p == db_pid else _cpu_seconds(p) for p in pids)

            per = posts // rounds
            for r in range(rounds):
                cpu = server_cpu()
                seconds, ok = asyncio.run(_post_all(relay.url, bodies[r * per : (r + 1) * per], concurrency))
                cpu = server_cpu() - cpu
                rates.append(ok / seconds)
                cpu_rates.append(ok / max(cpu, 1e-9))
            out: dict[str, Any] = {"load_avg_1m": round(os.getloadavg()[0], 1)}
            out["posts_per_s"], out["posts_per_s_range"] = _median_range(rates)
            out["posts_per_cpu_s"], out["posts_per_cpu_s_range"] = _median_range(cpu_rates)
            if batch:
                batch_seconds, batch_ok = asyncio.run(_post_batches(relay.url, batch_bodies, 100, 4))
                out["batch_posts_per_s"] = round(batch_ok / batch_seconds, 1)
            _queries(relay.url, 20, rng)  # warm-up
            # the servers' CPU while idle (the indexer polls the chain 4 times a second): subtracted from
            # the per-query figure, whose rounds last long on a loaded machine
            cpu, start = server_cpu(), time.perf_counter()
            time.sleep(3.0)
            idle = (server_cpu() - cpu) / (time.perf_counter() - start)
            out["idle_server_cpu_ms_per_s"] = round(idle * 1000, 2)
            autovacuum = _autovacuum_runs(db_url)
            p50s, p99s, cpu_ms, net_ms = [], [], [], []
            for _ in range(rounds):
                cpu, start = server_cpu(), time.perf_counter()
                lat = sorted(_queries(relay.url, max(1, queries // rounds), rng))
                used = server_cpu() - cpu
                cpu_ms.append(used * 1000 / len(lat))
                net_ms.append(max(0.0, used - idle * (time.perf_counter() - start)) * 1000 / len(lat))
                p50s.append(statistics.median(lat))
                p99s.append(lat[min(len(lat) - 1, int(0.99 * len(lat)))])
            out["query_server_cpu_ms"], out["query_server_cpu_ms_range"] = _median_range(cpu_ms, 2)
            out["query_server_cpu_net_ms"], out["query_server_cpu_net_ms_range"] = _median_range(net_ms, 2)
            out["query_p50_ms"], out["query_p50_ms_range"] = _median_range(p50s, 2)
            out["query_p99_ms"], out["query_p99_ms_range"] = _median_range(p99s, 2)
            if autovacuum is not None:  # autovacuum/autoanalyze passes over the book during the queries
                out["autovacuum_runs_during_queries"] = (_autovacuum_runs(db_url) or 0) - autovacuum
        out["load_avg_1m_end"] = round(os.getloadavg()[0], 1)
        return out
    finally:
        chain.close()


def _postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def run(
    sizes: list[int],
    posts: int = 2_000,
    queries: int = 400,
    log: Any = print,
    *,
    dbs: tuple[str, ...] = ("sqlite", "postgres"),
    rounds: int = 5,
    concurrency: int = 64,
    batch: bool = True,
) -> dict[str, Any]:
    """All (database, size) cells; flat keys ``relay.<db>.<size>.<metric>`` plus the headline keys
    ``relay.posts_per_s`` / ``relay.query_p50_ms`` / ``relay.query_p99_ms``: the worst database at the
    largest size."""
    results: dict[str, Any] = {}
    pg = PostgresServer().start() if "postgres" in dbs and pg_bindir() else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                urls = {"sqlite": f"sqlite:///{tmp}/bench{size}.db"} if "sqlite" in dbs else {}
                if pg is not None:
                    urls["postgres"] = pg.new_database(f"bench{size}")
                for kind, url in urls.items():
                    db_pid = _postmaster_pid(pg) if kind == "postgres" and pg is not None else None
                    cell = run_one(
                        url, size, posts, queries, rounds=rounds, concurrency=concurrency, batch=batch,
                        db_pid=db_pid,
                    )  # fmt: skip
                    label = f"{size // 1000}k"
                    for metric, value in cell.items():
                        results[f"relay.{kind}.{label}.{metric}"] = value
                    log(f"relay {kind:<8} {label:>5} offers: {cell}")
    finally:
        if pg is not None:
            pg.stop()
    top = f"{max(sizes) // 1000}k"
    cells = [k for k in results if f".{top}." in k]
    worst = {
        "posts_per_cpu_s": min,
        "posts_per_s": min,
        "batch_posts_per_s": min,
        "query_p50_ms": max,
        "query_p99_ms": max,
        "query_server_cpu_ms": max,
    }
    for metric, pick in worst.items():
        values = [results[k] for k in cells if k.endswith("." + metric)]
        if values:
            results[f"relay.{metric}"] = pick(values)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="book sizes, comma-separated")
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--dbs", default="sqlite,postgres", help="databases, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="bursts of posts / groups of queries")
    parser.add_argument("--concurrency", type=int, default=64, help="keep-alive connections posting")
    parser.add_argument("--no-batch", action="store_true", help="skip the POST /offers/batch figure")
    args = parser.parse_args()
    results = run(
        [int(s) for s in args.sizes.split(",")],
        args.posts,
        args.queries,
        dbs=tuple(args.dbs.split(",")),
        rounds=args.rounds,
        concurrency=args.concurrency,
        batch=not args.no_batch,
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Benchmark: trade throughput (naive web3.py vs agentmarket's fast path vs the raw node limit),
signatures per second, compile times, import + deploy time. Writes benchmarks/results.json.

One trade = the escrow lifecycle fund (create) -> submit -> accept: three transactions, each phase
depending on the previous one (the deal id comes from the DealCreated event). Every mode runs the
same phases against a fresh suite:

(a) naive    web3.py as documented: ``contract.functions.f(...).transact({"from": ...})`` (node signs,
             web3 estimates gas) then ``wait_for_transaction_receipt``, one transaction at a time;
(b) client   agentmarket's Transactor fast path: local coincurve signing, gas from the snapshot
             (``gas_key=``), ``transact_many`` = one JSON-RPC batch per phase, receipts polled in batches;
(c) raw      all transactions pre-signed before the clock starts (deal ids predicted), sent per phase
             in JSON-RPC batches, receipts polled in batches: the node's own ceiling.

Mining mode: anvil's default automine for all three modes (a block is mined as soon as transactions
arrive; transactions that arrive together share a block). Interval mining would cap the naive loop at one
transaction per block time, which says more about the block time than about the client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentmarket.calldata import calldata  # noqa: E402
from agentmarket.chain import Chain  # noqa: E402
from agentmarket.deploy import deploy_suite  # noqa: E402
from agentmarket.rpc import RPCError  # noqa: E402
from agentmarket.tx import TxRequest, _format_receipt  # noqa: E402

AMOUNT = 10**12
DELIVERABLE = b"\x11" * 32


# -- the operation: one escrow trade (fund, submit, accept) -------------------------------------------------


@dataclass
class Market:
    """A fresh suite plus one buyer and one seller; switch the operation here."""

    chain: Chain
    escrow: Any
    client: Any
    buyer: Any
    seller: Any
    terms: tuple[Any, ...]
    suite: Any = None

    @classmethod
    def setup(cls, chain: Chain) -> Market:
        from agentmarket.clients.escrow import EscrowClient

        suite = deploy_suite(chain, write=False, reuse=False)
        buyer, seller = chain.accounts[1], chain.accounts[2]
        client = EscrowClient.from_suite(suite, buyer)
        terms = client.terms(seller.address, AMOUNT, deliver_by=timedelta(days=10)).as_tuple()
        return cls(chain, suite["AgentEscrow"], client, buyer, seller, terms, suite)

    # phase -> (sender, contract function, value, gas key); the contract function is built lazily so
    # the fast client can skip web3's ContractFunction (it validates every argument on construction)
    def fund(self) -> tuple[Any, Any, int, str]:
        return self.buyer, lambda: self.escrow.functions.create(self.terms), AMOUNT, "escrow.fund_eth"

    def submit(self, deal_id: int) -> tuple[Any, Any, int, str]:
        return (
            self.seller,
            lambda: self.escrow.functions.submit(deal_id, self.terms, DELIVERABLE),
            0,
            "escrow.submit",
        )

    def accept(self, deal_id: int) -> tuple[Any, Any, int, str]:
        return self.buyer, lambda: self.escrow.functions.accept(deal_id, self.terms), 0, "escrow.accept"

    # the same calls as plain calldata, for the fast path (agentmarket.calldata: cached selector + types)
    def fund_data(self) -> bytes:
        return calldata(self.escrow, "create", self.terms)

    def submit_data(self, deal_id: int) -> bytes:
        return calldata(self.escrow, "submit", deal_id, self.terms, DELIVERABLE)

    def accept_data(self, deal_id: int) -> bytes:
        return calldata(self.escrow, "accept", deal_id, self.terms)

    def deal_id(self, receipt: Any) -> int:
        """Through the EscrowClient (web3.py event decoding), as the naive loop would."""
        return int(self.client._created_from_receipt(receipt).id)

    def deal_id_fast(self, receipt: Any) -> int:
        """DealCreated's first indexed topic is the deal id: no ABI decoding needed."""
        for log in receipt["logs"]:
            if log["address"] == self.escrow.address and bytes(log["topics"][0]) == self.created_topic:
                return int.from_bytes(bytes(log["topics"][1]), "big")
        raise AssertionError("no DealCreated")

    @property
    def created_topic(self) -> bytes:
        from eth_utils import event_abi_to_log_topic

        entry = next(e for e in self.escrow.abi if e.get("type") == "event" and e["name"] == "DealCreated")
        return bytes(event_abi_to_log_topic(entry))

    def settled(self) -> int:
        return int(self.escrow.functions.nextDealId().call()) - 1


def naive(market: Market, trades: int) -> float:
    """(a) the documented web3.py loop."""
    w3 = market.chain.w3

    def send(sender: Any, fn: Any, value: int) -> Any:
        tx_hash = fn.transact({"from": sender.address, "value": value})  # node-side (unlocked) account
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    start = time.perf_counter()
    for _ in range(trades):
        sender, fn, value, _ = market.fund()
        deal_id = market.deal_id(send(sender, fn(), value))
        sender, fn, value, _ = market.submit(deal_id)
        send(sender, fn(), value)
        sender, fn, value, _ = market.accept(deal_id)
        send(sender, fn(), value)
    return time.perf_counter() - start


def client(market: Market, trades: int) -> float:
    """(b) agentmarket's fast path: a batch per phase, snapshot gas, batched receipts."""
    tx = market.chain.transactor
    to = market.escrow.address
    topic = market.created_topic
    del topic

    def phase(items: list[tuple[Any, bytes, int, str]]) -> list[Any]:
        return tx.transact_many([TxRequest(s, to=to, data=d, value=v, gas_key=k) for s, d, v, k in items])

    buyer, seller = market.buyer, market.seller
    start = time.perf_counter()
    created = phase([(buyer, market.fund_data(), AMOUNT, "escrow.fund_eth") for _ in range(trades)])
    ids = [market.deal_id_fast(r) for r in created]
    phase([(seller, market.submit_data(i), 0, "escrow.submit") for i in ids])
    phase([(buyer, market.accept_data(i), 0, "escrow.accept") for i in ids])
    return time.perf_counter() - start


def api(market: Market, trades: int) -> float:
    """(d) the per-call path an agent following the README takes: ``buyer.buy`` (mandate checked, deal
    opened and funded), ``seller.escrow.submit``, ``buyer.escrow.accept``, one call at a time (pre-flight
    checks, snapshot gas, simulation, the mandate as signing policy, receipt, decoded deal)."""
    from agentmarket.agent import Agent
    from agentmarket.mandate import Mandate
    from agentmarket.types import ETH

    mandate = Mandate(budget={ETH: 10**24}, max_per_deal={ETH: 10 * AMOUNT})
    buyer = Agent(market.buyer, market.chain, market.suite, mandate=mandate, name="buyer")
    seller = Agent(market.seller, market.chain, market.suite, name="seller")
    start = time.perf_counter()
    for _ in range(trades):
        deal = buyer.buy(seller, AMOUNT, deliver_by=timedelta(days=10))
        deal = seller.escrow.submit(deal, b"\x01" * 32)
        buyer.escrow.accept(deal)
    return time.perf_counter() - start


class RequestCounter:
    """Counts JSON-RPC calls (a batch counts each call) and HTTP round trips while active: the
    Transactor's transport (``HTTPTransport._post``) and every ``requests`` session (web3's provider)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.posts = 0  # HTTP round trips (a batch is one)
        self._originals: tuple[Any, Any] | None = None

    def _count(self, payload: Any) -> None:
        self.posts += 1
        for call in payload if isinstance(payload, list) else [payload]:
            if isinstance(call, dict) and "method" in call:
                self.calls[call["method"]] = self.calls.get(call["method"], 0) + 1

    def __enter__(self) -> RequestCounter:
        import contextlib
        import json
        import threading

        import requests

        from agentmarket.rpc import HTTPTransport

        original_request, original_post = self._originals = (requests.Session.request, HTTPTransport._post)
        counter = self
        inside = threading.local()  # the transport's own requests fallback is not counted twice

        def request(session: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if not getattr(inside, "active", False):
                body = kwargs.get("data") or kwargs.get("json")
                with contextlib.suppress(ValueError):  # a body that is not JSON-RPC
                    counter._count(json.loads(body) if isinstance(body, (str, bytes)) else body)
            return original_request(session, method, url, *args, **kwargs)

        def post(transport: Any, body: Any) -> Any:
            counter._count(body)
            inside.active = True
            try:
                return original_post(transport, body)
            finally:
                inside.active = False

        requests.Session.request = request  # type: ignore[method-assign]
        HTTPTransport._post = post  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import requests

        from agentmarket.rpc import HTTPTransport

        assert self._originals is not None
        requests.Session.request, HTTPTransport._post = self._originals  # type: ignore[method-assign]

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def api_requests_per_trade(
    make_chain: Callable[[], Chain], trades: int = 5
) -> tuple[float, dict[str, int], float]:
    """JSON-RPC calls per trade of the per-call path (after a warm-up), the calls by method, and HTTP
    round trips per trade (a JSON-RPC batch is one round trip however many calls it carries)."""
    chain = make_chain()
    try:
        market = Market.setup(chain)
        api(market, 2)  # warm-up: code checks, fees, chain id are cached after this
        with RequestCounter() as counter:
            api(market, trades)
        return counter.total / trades, dict(sorted(counter.calls.items())), counter.posts / trades
    finally:
        chain.close()


def raw(market: Market, trades: int) -> float:
    """(c) the node's ceiling: everything pre-signed, sent per phase in JSON-RPC batches."""
    tx = market.chain.transactor
    transport = tx.transport
    first_id = market.settled() + 1
    nonces = {a.address: tx._chain_nonce(a.address) for a in (market.buyer, market.seller)}
    fees = tx.fee_fields()

    def sign(sender: Any, fn: Any, value: int, key: str) -> str:
        nonce = nonces[sender.address]
        nonces[sender.address] += 1
        signed = tx._signer(sender).sign(
            {
                "to": fn().address,
                "data": fn()._encode_transaction_data(),
                "value": value,
                "gas": tx.gas_limit(key),
                "chainId": tx.chain_id,
                "nonce": nonce,
                **fees,
            }
        )
        return "0x" + signed[0].hex()

    phases = [
        [sign(*market.fund()) for _ in range(trades)],
        [sign(*market.submit(first_id + i)) for i in range(trades)],
        [sign(*market.accept(first_id + i)) for i in range(trades)],
    ]

    start = time.perf_counter()
    for raws in phases:
        hashes = transport.batch([("eth_sendRawTransaction", [r]) for r in raws])
        assert not any(isinstance(h, RPCError) for h in hashes), hashes[:3]
        pending = list(hashes)
        while pending:
            answers = transport.batch([("eth_getTransactionReceipt", [h]) for h in pending])
            for h, answer in zip(list(pending), answers, strict=True):
                if answer is not None and not isinstance(answer, RPCError):
                    assert int(_format_receipt(answer)["status"]) == 1
                    pending.remove(h)
            if pending:
                time.sleep(0.002)
    return time.perf_counter() - start


def run_mode(make_chain: Callable[[], Chain], mode: Callable[[Market, int], float], trades: int) -> float:
    chain = make_chain()
    try:
        market = Market.setup(chain)
        before = market.settled()
        mode(market, min(5, trades))  # warm-up (imports, connection, caches), not timed
        elapsed = mode(market, trades)
        assert market.settled() == before + trades + min(5, trades)
        return trades / elapsed
    finally:
        chain.close()


def anvil_modes(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """(a)-(d) on anvil, side by side: each mode has its own anvil and market, and ``args.rounds`` rounds
    each run every mode once, back to back, in a rotating order (``--naive-trades``, ``--api-trades`` and
    ``--trades`` trades per round), so a shared machine's load hits every mode alike. A ratio is computed
    within each round; reported as the median over rounds and [min, max]. ``<mode>_tps``: all trades of
    the mode over all its time."""
    import statistics

    modes: dict[str, tuple[Callable[[Market, int], float], int]] = {
        "naive": (naive, args.naive_trades),
        "api": (api, args.api_trades),
        "client": (client, args.trades),
        "raw": (raw, args.trades),
    }
    chains = {name: Chain.anvil(accounts=4) for name in modes}  # automine (anvil's default)
    try:
        markets = {name: Market.setup(chain) for name, chain in chains.items()}
        before = {name: m.settled() for name, m in markets.items()}
        for name, (mode, trades) in modes.items():  # warm-up (imports, connections, caches), not timed
            mode(markets[name], min(5, trades))
        rates: dict[str, list[float]] = {name: [] for name in modes}
        spent: dict[str, float] = dict.fromkeys(modes, 0.0)
        cpu: dict[str, float] = dict.fromkeys(modes, 0.0)  # this process + the mode's anvil, seconds
        order = list(modes)
        for r in range(args.rounds):
            with console.status(f"anvil round {r + 1}/{args.rounds}: {', '.join(order)}"):
                for name in order:
                    mode, trades = modes[name]
                    cpu_before = time.process_time() + _node_cpu(chains[name])
                    elapsed = mode(markets[name], trades)
                    cpu[name] += time.process_time() + _node_cpu(chains[name]) - cpu_before
                    spent[name] += elapsed
                    rates[name].append(trades / elapsed)
            order = order[1:] + order[:1]
        for name, (_, trades) in modes.items():
            warm = min(5, trades)
            assert markets[name].settled() == before[name] + warm + args.rounds * trades, name
    finally:
        for chain in chains.values():
            chain.close()
    pairs = {
        "api_over_naive": ("api", "naive"),
        "client_over_naive": ("client", "naive"),
        "client_over_raw": ("client", "raw"),
    }
    out: dict[str, Any] = {}
    for name, (_, trades) in modes.items():
        out[f"anvil.{name}_tps"] = round(args.rounds * trades / spent[name], 2)
        out[f"anvil.{name}_cpu_ms_per_trade"] = round(1000 * cpu[name] / (args.rounds * trades), 2)
    # CPU per trade (client process + node) hardly depends on what else the machine runs: the ratio a
    # machine of its own would show when both sides are CPU-bound (it leaves out waits, e.g. web3's
    # 0.1 s receipt polling, which a loaded machine makes the naive loop hit more often)
    out["anvil.api_over_naive_cpu"] = round(
        out["anvil.naive_cpu_ms_per_trade"] / out["anvil.api_cpu_ms_per_trade"], 2
    )
    for key, (num, den) in pairs.items():
        ratios = [a / b for a, b in zip(rates[num], rates[den], strict=True)]
        out[f"anvil.{key}"] = round(statistics.median(ratios), 3)
        out[f"anvil.{key}_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    per_trade, by_method, posts = api_requests_per_trade(lambda: Chain.anvil(accounts=4))
    out["anvil.api_requests_per_trade"] = round(per_trade, 1)
    out["anvil.api_http_posts_per_trade"] = round(posts, 1)
    out["anvil.api_requests_by_method"] = by_method
    out["anvil.meta"] = {
        "rounds": args.rounds,
        "trades_per_round": {name: trades for name, (_, trades) in modes.items()},
        "ratio": "median over rounds of the ratio within the round (modes back to back, rotating order); "
        "range = [min, max]; <mode>_tps = all the mode's trades over all its time",
        "requests": "api_requests_per_trade: JSON-RPC calls per trade of (d) (a batch counts each call); "
        "api_http_posts_per_trade: HTTP round trips per trade",
        "cpu": "<mode>_cpu_ms_per_trade: CPU time of this process plus the mode's anvil per trade; "
        "api_over_naive_cpu: naive's over the per-call path's",
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return out


def _node_cpu(chain: Chain) -> float:
    """CPU seconds (user + system) the chain's anvil process has used so far (0 when not ours)."""
    process = getattr(chain, "_process", None)
    if process is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- signatures, compile, deploy ---------------------------------------------------------------------------


def signatures_per_second(seconds: float = 1.5) -> dict[str, float]:
    """What agents actually sign: agentmarket offers (build + EIP-712 digest + sign) and channel vouchers,
    through the library's coincurve signers; eth-account's generic typed-data path for reference."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from agentmarket.clients.offers import Offer, Side
    from agentmarket.eip712 import Domain, sign_digest
    from agentmarket.vouchers import VoucherDomain, VoucherSigner

    account = Account.create()
    contract = "0x" + "42" * 20
    domain = Domain("AgentMarket OfferBook", "1", 31337, contract)
    vouchers = VoucherSigner(account, VoucherDomain(31337, contract))
    channel = b"\x07" * 32

    def offer(i: int) -> Any:
        o = Offer(
            maker=account.address,
            side=Side.SELL,
            resource_id=b"\x01" * 32,
            unit_price=10**15 + i,
            quantity=10,
            expiry=2**40 - 1,
            min_fill=1,
            bond_per_unit=10**14,
            salt=i,
        )
        return sign_digest(account, o.digest(domain))

    def voucher(i: int) -> Any:
        return vouchers.sign(channel, i + 1)

    generic = {"name": "AgentMarket", "version": "1", "chainId": 31337, "verifyingContract": contract}
    types = {"Voucher": [{"name": "channelId", "type": "bytes32"}, {"name": "amount", "type": "uint256"}]}

    def eth_account_voucher(i: int) -> Any:
        return account.sign_message(encode_typed_data(generic, types, {"channelId": channel, "amount": i}))

    out = {}
    for name, sign in (("offer", offer), ("voucher", voucher), ("eth_account", eth_account_voucher)):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            sign(count)
            count += 1
        out[name] = count / (time.perf_counter() - start)
    return out


def tx_signatures_per_second(seconds: float = 0.5) -> float:
    from eth_account import Account

    from agentmarket.signing import Signer

    signer = Signer(Account.create())
    tx = {
        "to": "0x" + "42" * 20,
        "value": 1,
        "data": b"\x01" * 420,
        "gas": 100_000,
        "chainId": 31337,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": 0,
    }
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tx["nonce"] = count
        signer.sign(tx)
        count += 1
    return count / (time.perf_counter() - start)


def compile_times() -> tuple[float, float]:
    """Cold: a clean copy of the sources without a compiler cache. Warm: the same again (cache hit)."""
    from agentmarket.compiler import compile_sources

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        shutil.copytree(ROOT / "contracts", copy / "contracts")
        shutil.copy(ROOT / "package.json", copy / "package.json")
        os.symlink((ROOT / "node_modules").resolve(), copy / "node_modules")
        start = time.perf_counter()
        compile_sources(copy, use_cache=True)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        compile_sources(copy, use_cache=True)
        warm = time.perf_counter() - start
    return cold, warm


def import_and_deploy_times() -> tuple[float, float]:
    """A fresh interpreter: import agentmarket; then embedded chain + full suite deployment."""
    code = (
        "import time; t=time.perf_counter(); import agentmarket, agentmarket.chain, agentmarket.deploy, "
        "agentmarket.clients.escrow; i=time.perf_counter()-t; from agentmarket.chain import Chain; "
        "from agentmarket.deploy import deploy_suite; t=time.perf_counter(); "
        "deploy_suite(Chain.embedded(), write=False, reuse=False); print(i, time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    imported, deployed = (float(x) for x in out.stdout.split())
    return imported, deployed


def relay_bench(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """The offer relay's posts/s and query latency (scripts/bench_relay.py), SQLite and PostgreSQL."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_relay import run as run_relay

    sizes = [int(x) for x in args.relay_sizes.split(",")]
    with console.status("relay: posts and queries"):
        return run_relay(sizes, args.relay_posts, args.relay_queries, log=console.print)


def relay_meta(args: argparse.Namespace, load_before: float) -> dict[str, Any]:
    return {
        "what": "relay.<db>.<size>.posts_per_s: validated posts (parse, EIP-712 hash, signature, chain state, "
        "committed before the 201) by 16 concurrent HTTP connections; posts_per_cpu_s: the same per second "
        "of the relay process's own CPU time (independent of other load); query_p50/p99_ms: GET /offers "
        "(resource, side, max_price, limit 50) end to end; headline relay.* keys: worst database at the "
        "largest size",
        "sizes": args.relay_sizes,
        "posts": args.relay_posts,
        "queries": args.relay_queries,
        "load_average_1m_before": round(load_before, 2),
    }


# -- the simulator on anvil ---------------------------------------------------------------------------------


def _process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a child process so far (Linux /proc; 0 where unavailable)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim_benchmarks(agents_small: int = 200, rounds_small: int = 3) -> dict[str, float]:
    """The market simulator on a fresh anvil: settlement throughput (trades per second of settlement
    batches: fill, submit, accept) at ``agents_small`` agents, and the wall time of
    ``compute_market.py --agents 1000 --rounds 10 --chain anvil`` (setup, matching and settlement)."""
    import resource

    from agentmarket.market import Market
    from agentmarket.sim import SimConfig
    from agentmarket.sim.runner import ComputeMarketSim

    out: dict[str, float] = {}
    with Market.connect("anvil", accounts=2) as market:
        r = ComputeMarketSim(market, SimConfig(agents=agents_small, rounds=rounds_small, seed=1)).run()
        assert r.solvent and r.all_settled and r.events_match
        out["sim.trades_per_s"] = round(r.trades_per_second, 1)
        out["sim.match_s_per_round_200"] = round(r.match_seconds / rounds_small, 3)
    start = time.perf_counter()
    cpu0 = time.process_time()
    with Market.connect("anvil", accounts=2) as market:
        node = market.chain._process.pid if market.chain._process is not None else None
        node_cpu0 = _process_cpu(node)
        r = ComputeMarketSim(market, SimConfig(agents=1000, rounds=10, seed=1)).run()
        assert r.solvent and r.all_settled and r.events_match
        # the node's CPU too: with the process's own, a load-independent measure of the run's work
        out["sim.agents_1000_anvil_cpu_s"] = round(_process_cpu(node) - node_cpu0, 1)
    out["sim.agents_1000_s"] = round(time.perf_counter() - start, 1)
    out["sim.agents_1000_load_1m"] = round(os.getloadavg()[0], 2)
    out["sim.agents_1000_cpu_s"] = round(time.process_time() - cpu0, 1)  # the simulator's own CPU
    out["sim.agents_1000_trades"] = len(r.trades)
    out["sim.agents_1000_efficiency"] = round(r.efficiency, 4)
    out["sim.peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


SIM_META = (
    "sim.trades_per_s: compute_market (offers, 200 agents x 3 rounds, anvil) settled trades per second of "
    "settlement batches (fill + submit + accept through Transactor.transact_many); sim.over_client: over "
    "anvil.client_tps (with --only sim: over sim.client_tps_same_load, the client timed in the same run); sim.agents_1000_s: wall time of 1000 agents x 10 rounds on a fresh anvil (setup, "
    "matching, settlement, event recomputation; anvil mines each settlement phase in a few blocks); "
    "sim.agents_1000_cpu_s / sim.agents_1000_anvil_cpu_s: CPU time of the simulator process and of the anvil "
    "node in that run (the work, independent of other load); sim.agents_1000_load_1m: load average at its end"
)


# -- main ------------------------------------------------------------------------------------------------------


def _commit_probe(path: Path, n: int = 20) -> float:
    """Median ms of ``n`` one-row synchronous=FULL commits in WAL mode at ``path`` (the disk's flush
    latency right now, which every paid call of a durable gateway waits for once per group commit)."""
    import sqlite3
    import statistics

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 4, os.urandom(65)))
            db.execute("COMMIT")
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000
    finally:
        db.close()


def gateway_bench(
    calls: int = 10_000, rounds: int = 10, *, clients: int = 4, fast: bool = False
) -> dict[str, Any]:
    """Paid vs unpaid calls/s through one gateway process (``/echo`` vs ``/free/echo``: the same Starlette
    handler, with and without the payment middleware), in alternating rounds (paired): ``clients``
    agents, each with its own channel and keep-alive connection, call concurrently; and the on-chain gas
    of all ``calls`` paid calls (channel opens, top-ups, the payee's batch claims, the closes) divided by
    ``calls``. ``fast``: the server's voucher store runs synchronous=NORMAL (survives a process crash, not
    a power loss) instead of FULL. Between rounds a probe times 20 synchronous=FULL SQLite commits in the
    server's directory (what one group commit waits for on this disk at that moment)."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from eth_account import Account

    from agentmarket.agent import Agent
    from agentmarket.chain import free_port
    from agentmarket.gateway import ChannelPayment, PaidClient
    from agentmarket.gateway.demo import DEFAULT_ROUTES, spawn

    price = DEFAULT_ROUTES["/echo"].ceiling
    chain = Chain.anvil(accounts=2)
    tmp = Path(tempfile.mkdtemp(prefix="agentmarket-gw-"))
    process = None
    try:
        suite = deploy_suite(chain, write=False, reuse=False)
        payee = Account.create()
        payers = [Account.create() for _ in range(clients)]
        for account in (payee, *payers):
            chain.transactor.send_value(chain.accounts[0], account.address, 10**19)
        port = free_port()
        start_block = chain.w3.eth.block_number
        process = spawn(
            str(chain.url),
            suite["PaymentChannels"].address,
            bytes(payee.key),
            tmp / "v.sqlite",
            port,
            claim_interval=5.0,
            log=tmp / "gateway.log",
            fast=fast,
        )
        url = f"http://127.0.0.1:{port}"
        each = calls // rounds // clients  # calls per client per round
        payments = [
            ChannelPayment(Agent(p, chain, suite), requests_per_deposit=calls // clients // 3) for p in payers
        ]
        paid = [PaidClient(pay.agent, payment=pay, base_url=url) for pay in payments]
        free = [httpx.Client(base_url=url) for _ in payers]
        ratios, paid_rates, free_rates = [], [], []

        def burst(client: httpx.Client, path: str) -> None:
            for _ in range(each):
                client.get(path).raise_for_status()

        cpu = {"paid_server": 0.0, "paid_client": 0.0, "free_server": 0.0, "free_client": 0.0}

        def cpu_now() -> tuple[float, float]:  # (server process, this process) CPU seconds
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), time.process_time()

        probes: list[float] = []
        load_start = os.getloadavg()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(lambda c: c.get("/echo").raise_for_status(), paid))  # 402 + open: untimed
            for _ in range(rounds):
                probes.append(_commit_probe(tmp / "probe.sqlite"))
                c0, t0 = cpu_now(), time.perf_counter()
                list(pool.map(burst, free, ["/free/echo"] * clients))
                c1, t1 = cpu_now(), time.perf_counter()
                list(pool.map(burst, paid, ["/echo"] * clients))
                c2, t2 = cpu_now(), time.perf_counter()
                free_rates.append(each * clients / (t1 - t0))
                paid_rates.append(each * clients / (t2 - t1))
                ratios.append(paid_rates[-1] / free_rates[-1])
                cpu["free_server"] += c1[0] - c0[0]
                cpu["free_client"] += c1[1] - c0[1]
                cpu["paid_server"] += c2[0] - c1[0]
                cpu["paid_client"] += c2[1] - c1[1]
        timed = rounds * each * clients
        cpu_ms = {k: round(v / timed * 1000, 3) for k, v in cpu.items()}
        for client in paid:
            client.__exit__(None, None, None)  # closes each channel at its charged total
        for client in free:
            client.close()
        charged = sum(pay.sessions[0].charged for pay in payments)
        process.send_signal(15)  # graceful: the final claim runs (the close already settled)
        process.wait(timeout=60)
        process = None
        contract = suite["PaymentChannels"].address
        gas = 0
        txs = 0
        for number in range(start_block + 1, chain.w3.eth.block_number + 1):
            block = chain.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if tx["to"] == contract and tx["from"] in {payee.address, *(p.address for p in payers)}:
                    gas += int(chain.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])
                    txs += 1
        paid_calls = (rounds * each + 1) * clients
        if fast:
            return {
                "gateway.normal_sync_commit_probe_ms": round(statistics.median(probes), 2),
                "gateway.paid_over_unpaid_normal_sync": round(statistics.median(ratios), 3),
                "gateway.paid_over_unpaid_normal_sync_range": [round(min(ratios), 3), round(max(ratios), 3)],
                "gateway.normal_sync_cpu_ms_per_call": cpu_ms,
            }
        return {
            "gateway.paid_over_unpaid": round(statistics.median(ratios), 3),
            "gateway.paid_over_unpaid_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "gateway.paid_calls_per_s": round(statistics.median(paid_rates), 1),
            "gateway.unpaid_calls_per_s": round(statistics.median(free_rates), 1),
            "gateway.gas_per_call": round(gas / paid_calls, 1),
            # CPU per call of the server process and of the calling process (all client threads): what
            # the payment costs whatever else the machine runs
            "gateway.cpu_ms_per_call": cpu_ms,
            "gateway.commit_probe_ms": [
                round(min(probes), 2),
                round(statistics.median(probes), 2),
                round(max(probes), 2),
            ],
            "gateway.paid_over_unpaid_cpu": round(
                (cpu_ms["free_server"] + cpu_ms["free_client"])
                / (cpu_ms["paid_server"] + cpu_ms["paid_client"]),
                3,
            ),
            "gateway.meta": {
                "ratio": "median over rounds of (paid calls/s) / (unpaid calls/s) measured back to back; range = min, max",
                "commit_probe_ms": "min, median, max over rounds of the median of 20 synchronous=FULL SQLite commits next to the server's store",
                "load_avg_1m": [round(load_start[0], 1), round(os.getloadavg()[0], 1)],
                "rounds_ratio_and_probe_ms": [
                    [round(r, 3), round(p, 2)] for r, p in zip(ratios, probes, strict=True)
                ],
                "calls": paid_calls,
                "rounds": rounds,
                "clients": clients,
                "chain_txs": txs,
                "chain_gas": gas,
                "charged_wei": charged,
                "expected_wei": paid_calls * price,
                "durability": "voucher + charge ledger committed with synchronous=FULL before serving",
                "server": "uvicorn, one process, anvil automine; vouchers of concurrent requests group-committed",
                "clients_detail": "each client: its own agent, channel and httpx keep-alive connection, in a thread",
            },
        }
    finally:
        if process is not None:
            process.kill()
        chain.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trades", type=int, default=600, help="trades per round for (b) and (c) on anvil")
    parser.add_argument("--naive-trades", type=int, default=10, help="trades per round for (a) on anvil")
    parser.add_argument("--api-trades", type=int, default=20, help="trades per round for (d) on anvil")
    parser.add_argument(
        "--embedded-trades", type=int, default=30, help="trades per mode on the embedded chain"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--relay-sizes", default="10000,100000", help="offer-book sizes of the relay bench")
    parser.add_argument("--relay-posts", type=int, default=2_000, help="posts timed per relay cell")
    parser.add_argument("--relay-queries", type=int, default=400, help="queries timed per relay cell")
    parser.add_argument(
        "--only",
        choices=("relay", "sim", "api"),
        help="run only this part and update its keys in --out (api: the anvil modes naive, per-call, "
        "client and raw side by side in --rounds rounds; ratios as median and range)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the anvil modes, side by side")
    parser.add_argument("--no-sim", action="store_true", help="skip the market simulator benchmarks")
    parser.add_argument("--gateway-calls", type=int, default=10_000, help="paid calls in the gateway bench")
    parser.add_argument(
        "--gateway-clients", type=int, default=4, help="concurrent paying clients in the gateway bench"
    )
    parser.add_argument(
        "--only-gateway", action="store_true", help="run only the gateway bench; update its keys in --out"
    )
    args = parser.parse_args()
    console = Console()
    results: dict[str, Any] = {}
    if args.only_gateway:
        out = Path(args.out)
        results = json.loads(out.read_text()) if out.is_file() else {}
        with console.status(f"gateway: {args.gateway_calls} paid vs unpaid calls"):
            results.update(gateway_bench(args.gateway_calls, clients=args.gateway_clients))
            results.update(
                gateway_bench(max(1000, args.gateway_calls // 5), clients=args.gateway_clients, fast=True)
            )
        out.write_text(json.dumps(results, indent=2) + "\n")
        console.print({k: v for k, v in results.items() if k.startswith("gateway.")})
        return 0
    load_before = os.getloadavg()[0]
    if args.only == "sim":  # the simulator alone, merged into the existing results (ratio to its client_tps)
        out = Path(args.out)
        previous = json.loads(out.read_text()) if out.exists() else {}
        with console.status("anvil: client (b) and market simulator under the same load"):
            # the ratio compares like with like: the client's pipeline timed now, next to the simulator
            client_now = run_mode(lambda: Chain.anvil(accounts=4), client, 300)
            previous.update(sim_benchmarks())
        previous["sim.client_tps_same_load"] = round(client_now, 1)
        previous["sim.over_client"] = round(previous["sim.trades_per_s"] / client_now, 3)
        previous.setdefault("meta", {})["sim"] = SIM_META
        out.write_text(json.dumps(previous, indent=2) + "\n")
        console.print({k: v for k, v in previous.items() if k.startswith("sim.")})
        return 0
    if args.only == "api":
        out = Path(args.out)
        previous = json.loads(out.read_text()) if out.is_file() else {}
        api_results = anvil_modes(args, console)
        previous.update(api_results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(previous, indent=2) + "\n")
        console.print_json(json.dumps(api_results))
        return 0
    if args.only == "relay":
        out = Path(args.out)
        previous = json.loads(out.read_text()) if out.is_file() else {}
        relay = relay_bench(args, console)
        previous.update(relay)
        previous.setdefault("meta", {})["relay"] = relay_meta(args, load_before)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(previous, indent=2) + "\n")
        console.print_json(json.dumps(relay))
        return 0

    with console.status("signatures"):
        sigs = signatures_per_second()
        results["sign_per_s"] = round(min(sigs["offer"], sigs["voucher"]), 1)
        results["sign_eth_account_typed_data_per_s"] = round(sigs["eth_account"], 1)
        results["sign_offer_per_s"] = round(sigs["offer"], 1)
        results["sign_voucher_per_s"] = round(sigs["voucher"], 1)
        results["sign_tx_per_s"] = round(tx_signatures_per_second(), 1)
    with console.status("compile"):
        cold, warm = compile_times()
        results["compile_cold_s"], results["compile_warm_s"] = round(cold, 3), round(warm, 4)
    with console.status("import + deploy on the embedded chain"):
        imported, deployed = import_and_deploy_times()
        results["import_s"], results["deploy_embedded_s"] = round(imported, 3), round(deployed, 3)

    embedded = lambda: Chain.embedded(accounts=4)  # noqa: E731
    results.update(anvil_modes(args, console))
    with console.status("embedded: (a) naive web3.py"):
        results["embedded.naive_tps"] = round(run_mode(embedded, naive, args.embedded_trades), 2)
    with console.status("embedded: (b) agentmarket client"):
        results["embedded.client_tps"] = round(run_mode(embedded, client, args.embedded_trades), 2)
    results.update(relay_bench(args, console))
    with console.status(f"gateway: {args.gateway_calls} paid vs unpaid calls"):
        results.update(gateway_bench(args.gateway_calls))
        results.update(gateway_bench(max(1000, args.gateway_calls // 5), fast=True))
    if not args.no_sim:
        with console.status("anvil: market simulator (200 agents; 1000 agents x 10 rounds)"):
            results.update(sim_benchmarks())
        results["sim.over_client"] = round(results["sim.trades_per_s"] / results["anvil.client_tps"], 3)
    results["embedded.client_over_naive"] = round(
        results["embedded.client_tps"] / results["embedded.naive_tps"], 2
    )
    results["meta"] = {
        "trade": "escrow create(fund, ETH) + submit + accept = 3 transactions; tps = trades per second",
        "mining": "anvil automine (default) for (a), (b), (c), (d); embedded eth-tester automine",
        "trades": {
            "anvil (per round, see anvil.meta)": {
                "naive": args.naive_trades,
                "api": args.api_trades,
                "client": args.trades,
                "raw": args.trades,
            },
            "embedded": args.embedded_trades,
        },
        "sign_per_s": "EIP-712 offers (built + digest + signed) and channel vouchers through agentmarket's coincurve signers; the lower of the two. sign_eth_account_typed_data_per_s: eth-account's generic encode_typed_data + sign_message path",
        "compile_cold_s": "clean copy, no compiler cache; compile_warm_s: same sources again (cache hit)",
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "relay": relay_meta(args, load_before),
        "sim": SIM_META,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    goals = {
        "anvil.client_over_naive": 20,
        "anvil.client_over_raw": 0.5,
        "anvil.api_over_naive": 3,
        "embedded.client_over_naive": 2.5,
        "sign_per_s": 1000,
        "relay.posts_per_s": 1000,
        "gateway.paid_over_unpaid": 0.5,
        "sim.over_client": 0.5,
    }
    ceilings = {"relay.query_p99_ms": 50, "sim.agents_1000_s": 120}
    table = Table(title="agentmarket benchmark (trade = escrow fund + submit + accept; anvil automine)")
    for column in ("metric", "value", "goal"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, value in results.items():
        if key.endswith("meta"):
            continue
        if not isinstance(value, (int, float)):  # ranges and per-method counts: shown as they are
            table.add_row(key, str(value), "")
            continue
        goal, ceiling = goals.get(key), ceilings.get(key)
        mark = "" if goal is None else (f"[green]>= {goal}[/]" if value >= goal else f"[red]>= {goal}[/]")
        if ceiling is not None:
            mark = f"[green]< {ceiling}[/]" if value < ceiling else f"[red]< {ceiling}[/]"
        table.add_row(key, f"{value:,}", mark)
    console.print(table)
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

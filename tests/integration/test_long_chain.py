"""Event lookups on a long chain behind a provider that caps ``eth_getLogs`` ranges.

The issue asks for an anvil advanced by a million blocks. Mining them with ``anvil_mine`` does not fit in
``make test`` (5,000 blocks took 84 s on the shared machine, so a million would take hours), so anvil starts
with its genesis block numbered 1,000,000 (``--number``, the same as ``--init genesis.json`` with
``"number": "0xf4240"``): what a lookup pays depends on the block numbers it spans, not on how they were
made. A lookup from block 0 would need 1,000,000 / CAP requests; one from the deployment block needs a few.
anvil sits behind a real HTTP proxy that refuses any ``eth_getLogs`` range wider than ``CAP`` blocks, as
public providers do. The README trade must work through it, every lookup must start at the deployment
block the manifest records, and once ``anvil_mine`` has put a few real blocks (10 x CAP) between the
deployment and the lookup, the scan must learn the cap and read the range in about ``range / CAP``
requests. Requests are counted, never timed (wall-clock time on a shared machine says nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from rpcproxy import RPCProxy

from agentmarket import Market
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.logscan import LogWindow, is_range_refusal, window_of
from agentmarket.types import DealState

pytestmark = pytest.mark.anvil

GENESIS = 1_000_000
CAP = 50  # small, so that 10 x CAP mined blocks stay cheap
FINNEY = 10**15


@pytest.fixture
def long_anvil() -> Iterator[Chain]:
    chain = Chain.anvil(accounts=3, args=("--number", str(GENESIS)))
    try:
        yield chain
    finally:
        chain.close()


def test_lookups_start_at_deployment_and_adapt_to_a_range_cap(long_anvil: Chain, tmp_path: Path) -> None:
    keys = ["0x" + a.key.hex() for a in long_anvil.accounts]
    with RPCProxy(str(long_anvil.url), max_log_range=CAP) as proxy:
        chain = Chain.connect(proxy.url, keys=keys)
        with Market.connect(chain, manifest=tmp_path / "manifest.json") as market:
            deployed = int(market.suite.manifest["contracts"]["AgentEscrow"]["block"])
            assert deployed >= GENESIS
            buyer, seller = market.agent("buyer"), market.agent("seller")
            deal = buyer.buy(seller, 20 * FINNEY, resource="gpu-hour", units=2)
            deal = seller.escrow.submit(deal, b"2 GPU-hours")
            deal = buyer.escrow.accept(deal)
            assert deal.state == DealState.ACCEPTED
            # lookups (the trade itself decodes its receipts): from the deployment block, not genesis,
            # so none is wide enough to be refused
            assert market.escrow.deal(deal.id).state == DealState.ACCEPTED
            assert [d.id for d in seller.escrow.deals(party=seller.address)] == [deal.id]
            assert proxy.log_ranges and min(start for start, _ in proxy.log_ranges) >= deployed
            assert proxy.refused == 0
            # what a naive lookup from block 0 meets: the provider refuses the range outright, and a scan
            # in CAP-sized windows from genesis would cost 1,000,000 / CAP = 20,000 requests
            with pytest.raises(Exception, match="range"):
                market.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
            naive_refusals = proxy.refused
            assert proxy.refused == naive_refusals == 1
            assert proxy.counts["eth_getLogs"] < 20 < GENESIS // CAP

            # real blocks between the deployment and the next lookup: 10 x CAP
            gap = 10 * CAP
            long_anvil.mine(gap)
            before = proxy.counts["eth_getLogs"]
            fresh = EscrowClient.from_suite(market.suite)  # a new client, no cached origin
            assert fresh.from_block == deployed
            assert fresh.deal(deal.id).state == DealState.ACCEPTED
            first = proxy.counts["eth_getLogs"] - before
            span = market.w3.eth.block_number - deployed + 1
            window = window_of(market.w3)
            assert proxy.refused - naive_refusals == window.refusals > 0  # the cap was hit and learned
            # the learning run: one whole-range try, halvings down to the cap, then ~span/CAP windows
            assert first <= math.ceil(span / CAP) + 20, (first, span)
            # learned: the next lookup costs about span / CAP requests and meets no refusal
            before, refused = proxy.counts["eth_getLogs"], proxy.refused
            deals = EscrowClient.from_suite(market.suite).deals(party=buyer.address)
            assert [d.id for d in deals] == [deal.id]
            second = proxy.counts["eth_getLogs"] - before
            assert second <= math.ceil(span / (CAP // 2)) + 1, (second, span)
            assert proxy.refused - refused <= 2
            assert all(stop - start + 1 <= CAP for start, stop in proxy.log_ranges)


def test_window_converges_to_the_cap_and_recovers() -> None:
    window = LogWindow()
    refusals = 0
    start, end, scanned = 0, 50_000, 0
    while start <= end:
        size = window.size or (end - start + 1)
        stop = min(end, start + size - 1)
        if stop - start + 1 > 1_000:
            window.refused(stop - start + 1)
            refusals += 1
            continue
        window.succeeded(stop - start + 1)
        scanned += stop - start + 1
        start = stop + 1
    assert scanned == end + 1
    assert refusals <= 15  # learning costs a bounded number of refusals
    assert window.size is not None and 900 <= window.size <= 1_000


def test_range_refusals_are_told_from_other_errors() -> None:
    import requests
    from web3.exceptions import Web3RPCError

    for message in (
        "query returned more than 10000 results",
        "eth_getLogs block range too large: 5000 > 1000 blocks",
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
        "exceed maximum block range: 50000",
        "request timed out",
    ):
        assert is_range_refusal(Web3RPCError(message)), message
    assert is_range_refusal(requests.exceptions.ReadTimeout())
    for message in ("invalid argument 0: hex string without 0x prefix", "method not found", "unauthorized"):
        assert not is_range_refusal(Web3RPCError(message)), message

"""Faults: SIGKILL of the relay during a burst of posts, restart, confirmations, catching up after downtime.
Real relay processes, real databases (SQLite and PostgreSQL), real anvil. One test per database because a
relay process takes seconds to start on a loaded machine."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from relaytest import wait_for

from agentmarket.chain import Chain
from agentmarket.clients.offers import OffersClient, SignedOffer
from agentmarket.deploy import Suite
from agentmarket.relay import RelayClient
from agentmarket.relay.process import RelayProcess

pytestmark = pytest.mark.anvil

PRICE = 10**15
ARGS = ("--client-rate", "0", "--maker-rate", "0", "--confirmations", "2")


def test_sigkill_during_a_burst_then_restart_resumes_and_catches_up(
    spawn: Callable[..., RelayProcess], new_db: Callable[[], str], market: tuple[Chain, Suite]
) -> None:
    chain, suite = market
    book = OffersClient.from_suite(suite)
    maker = OffersClient.from_suite(suite, chain.accounts[1])
    buyer = OffersClient.from_suite(suite, chain.accounts[2])
    db = new_db()
    relay = spawn(db, *ARGS)
    rc = RelayClient(relay.url)

    # confirmations: a fill is applied only once buried under 2 blocks
    s = maker.offer("sell", "confirm", PRICE, 5)
    rc.post(s)
    buyer.fill(s, 2)
    mined = chain.w3.eth.block_number
    wait_for(lambda: rc.health()["indexed_block"] >= mined - 2, what="indexer at head - 2")
    time.sleep(0.3)
    assert rc.get(s.hash).remaining == 5
    chain.mine(2)
    wait_for(lambda: rc.get(s.hash).remaining == 3, what="fill confirmed")
    indexed = rc.health()["indexed_block"]

    # a burst of posts from 8 clients, killed with SIGKILL half way
    bodies = []
    for i in range(300):  # signed up front so the burst is only HTTP and the relay's own work
        key = Account.from_key(secrets.token_bytes(32))
        offer = book.build("sell", "burst", PRICE + i, 2, maker=key.address, counter=0, salt=i, expiry=2**39)
        bodies.append((offer.digest(book.domain), book.sign(offer, key=key).to_json()))
    acked: list[bytes] = []
    refused: list[int] = []
    lock = threading.Lock()
    queue = iter(bodies)

    def worker() -> None:
        with httpx.Client(base_url=relay.url, timeout=5) as http:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                try:
                    r = http.post("/offers", content=item[1], headers={"content-type": "application/json"})
                except httpx.HTTPError:
                    return  # the relay is gone
                with lock:
                    (acked.append(item[0]) if r.status_code in (200, 201) else refused.append(r.status_code))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 40, what="burst under way")
    relay.kill()
    for t in threads:
        t.join(timeout=10)
    assert not refused and 40 <= len(acked) < len(bodies)

    # while the relay is down the chain moves on
    first = SignedOffer.from_json(next(b for h, b in bodies if h == acked[0]))
    buyer.fill(first, 1)
    buyer.fill(s, 1)
    chain.mine(2)

    restarted = spawn(db, *ARGS, port=relay.port)
    rc = RelayClient(restarted.url)
    assert rc.health()["indexed_block"] >= indexed  # resumed from its cursor, not from the deploy block
    for h in acked:  # every post that got its answer is there
        assert rc.get(h).signed.hash == h
    wait_for(lambda: rc.get(acked[0]).remaining == 1, what="indexer caught up after restart")
    wait_for(lambda: rc.get(s.hash).remaining == 2, what="indexer caught up after restart")

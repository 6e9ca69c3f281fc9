#!/usr/bin/env python3
"""Demo: a market across OS processes through the offer relay.

The orchestrator starts anvil, deploys the suite and starts the relay (``agentmarket relay``, SQLite file).
Then three provider processes and three buyer processes start. They know only the relay's URL and the
chain's: providers sign offers and post them to the relay; buyers query the relay, pick the cheapest offer
with enough left, check it on chain and fill it (the OfferBook opens an escrow deal and locks the payment);
providers see their deals on chain and submit the deliverable; buyers accept, which pays the provider. Every
line is printed by the process that did it. Keys travel to the children in the environment, never on the
command line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentmarket.chain import Chain  # noqa: E402
from agentmarket.clients.escrow import EscrowClient  # noqa: E402
from agentmarket.clients.offers import OffersClient  # noqa: E402
from agentmarket.errors import AgentMarketError  # noqa: E402
from agentmarket.relay import RelayClient, RelayNotFound  # noqa: E402
from agentmarket.types import DealState  # noqa: E402

RESOURCE = "gpu-hour/h100"
MILLI = 10**15  # 0.001 ETH
KEY_ENV = "AGENTMARKET_DEMO_KEY"


def say(who: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {who:<10} {text}", flush=True)


def connect(args: argparse.Namespace) -> tuple[Chain, OffersClient, EscrowClient]:
    chain = Chain.connect(args.chain, keys=[os.environ.pop(KEY_ENV)])
    me = chain.accounts[0]
    offers = OffersClient(chain, args.offerbook, me)
    return chain, offers, offers.escrow


def provider(args: argparse.Namespace) -> None:
    name = f"provider{args.index}"
    _chain, offers, escrow = connect(args)
    relay = RelayClient(args.relay)
    for k, price in enumerate((2 + args.index, 5 + args.index)):
        signed = offers.publish(
            offers.build("sell", RESOURCE, price * MILLI, 3, delivery=600, salt=k), relay=relay
        )
        say(name, f"posted offer {signed.hash.hex()[:10]}: 3 x {RESOURCE} at {price / 1000:.3f} ETH (no gas)")
    deadline = time.monotonic() + args.seconds
    done: set[int] = set()
    while time.monotonic() < deadline:
        for deal in escrow.deals(party=offers.account.address, role="seller", state=DealState.FUNDED):
            if deal.id in done:
                continue
            escrow.submit(deal, b"results of %d gpu-hours" % deal.id)
            done.add(deal.id)
            say(
                name,
                f"deal {deal.id}: buyer {deal.buyer[:8]} paid {deal.amount / 10**18:.3f} ETH into escrow; delivered",
            )
        time.sleep(0.3)


def buyer(args: argparse.Namespace) -> None:
    name = f"buyer{args.index}"
    _chain, offers, escrow = connect(args)
    relay = RelayClient(args.relay)
    bought = 0
    deadline = time.monotonic() + args.seconds
    while bought < 2 and time.monotonic() < deadline:
        try:
            page = relay.query(resource=RESOURCE, side="sell", min_remaining=2, limit=3)
            if page.offers:
                shown = ", ".join(f"{o.offer.unit_price / 10**18:.3f}x{o.remaining}" for o in page.offers)
                say(name, f"relay shows best offers {shown}")
            fill = offers.fill_from_relay(relay, RESOURCE, 2, max_price=8 * MILLI)
        except RelayNotFound:
            time.sleep(0.5)  # nothing (left) to buy yet
            continue
        except AgentMarketError as exc:  # another buyer was faster: ask the relay again
            say(name, f"lost a race ({type(exc).__name__}); asking the relay again")
            time.sleep(0.2)
            continue
        bought += 1
        say(
            name,
            f"filled 2 of offer {fill.offer_hash.hex()[:10]} by {fill.deal.seller[:8]}: deal {fill.deal.id}, "
            f"{fill.deal.amount / 10**18:.3f} ETH locked (tx {fill.tx_hash[:10]})",
        )
        while time.monotonic() < deadline:
            deal = escrow.deal(fill.deal.id)
            if deal.state == DealState.SUBMITTED:
                escrow.accept(deal)
                say(name, f"deal {deal.id}: delivery received and accepted; provider paid")
                break
            time.sleep(0.3)


def orchestrate(args: argparse.Namespace) -> int:
    from agentmarket.deploy import deploy_suite
    from agentmarket.relay.process import RelayProcess

    chain = Chain.anvil(accounts=8)
    suite = deploy_suite(chain, write=False, reuse=False)
    book = suite["OfferBook"].address
    say("market", f"anvil {chain.url}, OfferBook {book}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        RelayProcess(
            f"sqlite:///{tmp}/relay.db", str(chain.url), book, suite["ReputationRegistry"].address
        ) as relay,
    ):
        say("market", f"relay {relay.url} (SQLite {tmp}/relay.db); starting 3 providers and 3 buyers")
        base = [
            sys.executable,
            __file__,
            "--chain",
            str(chain.url),
            "--relay",
            relay.url,
            "--offerbook",
            book,
        ]
        procs = {}
        for role, first in (("provider", 1), ("buyer", 4)):
            for i in range(3):
                env = dict(
                    os.environ, **{KEY_ENV: "0x" + chain.accounts[first + i].key.hex().removeprefix("0x")}
                )
                cmd = [*base, "--role", role, "--index", str(i), "--seconds", str(args.seconds)]
                procs[f"{role}{i}"] = subprocess.Popen(cmd, env=env)
        for i in range(3):
            procs[f"buyer{i}"].wait(timeout=args.seconds + 60)
        escrow = EscrowClient.from_suite(suite)
        wait_until = time.monotonic() + 20
        while time.monotonic() < wait_until and any(d.state != DealState.ACCEPTED for d in escrow.deals()):
            time.sleep(0.3)
        for i in range(3):
            procs[f"provider{i}"].terminate()
            procs[f"provider{i}"].wait(timeout=20)
        deals = escrow.deals()
        rc = RelayClient(relay.url)
        say("market", f"{len(deals)} deals on chain:")
        for d in deals:
            say(
                "market",
                f"  deal {d.id}: seller {d.seller[:8]} buyer {d.buyer[:8]} {d.amount / 10**18:.3f} ETH {d.state.name}",
            )
        left = rc.query(resource=RESOURCE, side="sell", limit=50).offers
        say(
            "market",
            "relay book now: " + ", ".join(f"{o.offer.unit_price / 10**18:.3f}x{o.remaining}" for o in left),
        )
        settled = sum(d.state == DealState.ACCEPTED for d in deals)
        say("market", f"{settled}/{len(deals)} deals settled through the relay-discovered offers")
    chain.close()
    return 0 if deals and settled == len(deals) == 6 else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("provider", "buyer"))
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--chain")
    parser.add_argument("--relay")
    parser.add_argument("--offerbook")
    parser.add_argument("--seconds", type=float, default=90.0, help="time limit of each agent process")
    args = parser.parse_args()
    if args.role == "provider":
        provider(args)
        return 0
    if args.role == "buyer":
        buyer(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Demo: one auction of each kind on a fresh suite, settled into escrow deals; real on-chain results."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.clients.auctions import AuctionClient, AuctionKind
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import deploy_suite
from agentmarket.units import WEI_PER_ETH

HOUR = 3600


def fmt(wei: int) -> str:
    return f"{wei / WEI_PER_ETH:.4f} ETH"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default) or anvil (needs time travel)")
    args = parser.parse_args()
    console = Console(width=150)
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=False)
        seller, a1, a2, a3, arbiter = chain.accounts[1:6]
        names = {
            seller.address: "gpu-seller",
            a1.address: "agent-1",
            a2.address: "agent-2",
            a3.address: "agent-3",
        }
        house = AuctionClient.from_suite(suite, seller)
        escrow = EscrowClient.from_suite(suite, seller)
        results = Table(title=f"auctions on chain {chain.chain_id} ({chain.kind})")
        for column in ("auction", "bids", "winner", "price paid", "escrow deal", "key tx gas"):
            results.add_column(column)

        def deal_text(deal_id: int) -> str:
            if not deal_id:
                return "-"
            d = escrow.deal(deal_id)
            late = f", late {d.terms.penalty_bps_per_hour} bps/h" if d.terms.penalty_bps_per_hour else ""
            return (
                f"#{deal_id} {d.state.name} {fmt(d.terms.amount)} + bond {fmt(d.terms.bond)} "
                f"due {d.terms.deliver_by - chain.now()}s{late}"
            )

        # English: reserve 1 ETH, 5% increments, 5-minute anti-sniping. Every sale names an arbiter and the
        # seller posts a 0.1 ETH bond at creation: a cleared sale binds both sides (seller bond in the deal)
        terms = house.template(
            2 * HOUR,
            promise_delay=HOUR,
            terms_hash=b"gpu:a100x8:2h".ljust(32, b"\0"),
            arbiter=arbiter.address,
            bond=WEI_PER_ETH // 10,
        )
        now = house.now()
        en = house.create_english(
            terms,
            reserve=WEI_PER_ETH,
            start_time=now + 5,
            end_time=now + HOUR,
            extension=300,
            min_increment_bps=500,
        )
        chain.travel_to(en.start_time)
        house.as_(a1).bid(en, WEI_PER_ETH)
        b2 = house.as_(a2)
        b2.bid(en, house.refresh(en).minimum_bid())
        outbid_gas = b2.last_receipt["gasUsed"]
        chain.travel_to(en.end_time - 100)  # a late bid: the end moves 300 s later
        house.as_(a1).bid(en, house.refresh(en).minimum_bid())
        en = house.refresh(en)
        chain.travel_to(en.end_time + 1)
        settler = house.as_(a3)
        en = settler.settle(en)
        results.add_row(
            "English",
            f"{len(en.bids)} (end extended to +{en.end_time - en.start_time}s)",
            names[en.winner],
            fmt(en.price),
            deal_text(en.deal_id),
            f"outbid {outbid_gas:,} / settle {settler.last_receipt['gasUsed']:,}",
        )

        # Dutch: 2 ETH falling to 1 ETH over 1,000 s; agent-2 buys at t+400 with a 2 ETH cap
        now = house.now()
        du = house.create_dutch(
            terms,
            start_price=2 * WEI_PER_ETH,
            floor_price=WEI_PER_ETH,
            start_time=now + 5,
            end_time=now + 1005,
        )
        chain.travel_to(du.start_time + 399)
        chain.set_next_timestamp(du.start_time + 400)
        quoted = du.price_at(du.start_time + 400)
        buyer = house.as_(a2)
        du = buyer.buy(du, max_price=2 * WEI_PER_ETH)
        assert du.price == quoted, "local Dutch price must equal the contract's"
        results.add_row(
            "Dutch",
            f"1 (quoted locally {fmt(quoted)})",
            names[du.winner],
            fmt(du.price),
            deal_text(du.deal_id),
            f"buy {buyer.last_receipt['gasUsed']:,}",
        )

        # Sealed Vickrey: the client's default deposit is the bid's bucket (reserve * 2^k), not the bid
        now = house.now()
        se = house.create_sealed(
            terms,
            reserve=WEI_PER_ETH // 2,
            commit_end=now + 600,
            reveal_end=now + 1200,
            penalty_bps=1000,
            vickrey=True,
        )
        bidders = [
            (house.as_(a1), 26 * WEI_PER_ETH // 10),
            (house.as_(a2), 17 * WEI_PER_ETH // 10),
            (house.as_(a3), 8 * WEI_PER_ETH // 10),
        ]
        deposits = [client.commit(se, amount).deposit for client, amount in bidders]
        commit_gas = bidders[-1][0].last_receipt["gasUsed"]
        chain.travel_to(se.end_time + 1)
        for client, _ in bidders:
            client.reveal(se)
        reveal_gas = bidders[1][0].last_receipt["gasUsed"]
        chain.travel_to(se.reveal_end + 1)
        se = settler.settle(se)
        refunds = [client.reclaim(se) for client, _ in bidders]
        results.add_row(
            "Sealed (Vickrey)",
            "3 commits, 3 reveals",
            names[se.winner],
            f"{fmt(se.price)} (bid {fmt(se.leading_amount)})",
            deal_text(se.deal_id),
            f"commit {commit_gas:,} / reveal {reveal_gas:,}",
        )

        # Procurement: the buyer locks 5 ETH; score = price + 1e14 wei per second of delivery
        buyer_agent = house.as_(a1)
        # (the arbiter is required by default; each second late past the promise costs 1e14 wei, its score)
        pterms = buyer_agent.template(
            HOUR,
            bond=WEI_PER_ETH // 10,
            terms_hash=b"label:10k-images".ljust(32, b"\0"),
            arbiter=arbiter.address,
        )
        now = house.now()
        pr = buyer_agent.create_procurement(
            pterms,
            budget=5 * WEI_PER_ETH,
            bid_end=now + 600,
            price_weight=1,
            time_weight=10**14,
            max_delivery=86_400,
        )
        offers = [
            (house.as_(a2), 4 * WEI_PER_ETH, 2 * HOUR),
            (house.as_(a3), 7 * WEI_PER_ETH // 2, 3 * HOUR),
            (house.as_(seller), 3 * WEI_PER_ETH, HOUR),
        ]
        for client, price, delivery in offers:
            client.offer(pr, price, delivery)
        proc_gas = offers[-1][0].last_receipt["gasUsed"]
        chain.travel_to(pr.end_time + 1)
        pr = settler.settle(pr)
        won = next(b for b in pr.bids if b.bidder == pr.winner)
        results.add_row(
            "Procurement (open)",
            f"{len(pr.bids)} offers",
            names[pr.winner],
            f"{fmt(pr.price)}, {won.delivery_seconds}s, bond {fmt(won.bond)}",
            deal_text(pr.deal_id),
            f"offer {proc_gas:,}",
        )
        console.print(results)

        refunds_table = Table(title="sealed-bid deposits (public) and refunds")
        for column in ("bidder", "bid (secret)", "deposit (public)", "refund"):
            refunds_table.add_column(column)
        for (client, amount), deposit, refund in zip(bidders, deposits, refunds, strict=True):
            refunds_table.add_row(names[client.account.address], fmt(amount), fmt(deposit), fmt(refund))
        console.print(refunds_table)
        credit = house.as_(a2).credit(AuctionKind.ENGLISH)
        console.print(f"agent-2's outbid credit at the English auction: {fmt(credit)} (withdrawable)")


if __name__ == "__main__":
    main()

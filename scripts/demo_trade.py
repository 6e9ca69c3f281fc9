#!/usr/bin/env python3
"""Demo: two AI agents negotiate a GPU deal, sign it, lock the money on chain, deliver, get paid, rate.

The story, for someone new to Ethereum:

* A **model-trainer agent** needs 4 GPU-hours; a **GPU-provider agent** sells them. Each has private
  preferences over price, delivery time and the bond the provider puts at stake.
* They **negotiate** off chain (alternating offers) until one accepts the other's terms.
* The provider turns the agreement into an **offer signed with its key** (EIP-712: a signature anyone can
  verify, bound to this chain and contract). The trainer **fills** it: one transaction that moves the price
  into the **escrow** contract, together with the provider's bond. Nobody can take that money out except by
  following the deal's rules.
* The trainer's **spend mandate** (budget, price band) is checked *before* anything is signed.
* The provider **delivers** (it records a hash of the result on chain), the trainer **accepts**, the escrow
  **pays** the provider. Both **rate** each other; only parties of a settled deal can.
* Deal 2: the provider misses its deadline; **anyone** can trigger the refund, and the trainer gets its
  money back plus the provider's bond.

Every transaction is printed with its hash and the gas it used (gas = the computation the chain charged).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from agentmarket import Mandate, Market, PriceBand, resource_id
from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.errors import AgentMarketError, ConfigError, MandateViolation
from agentmarket.strategies import (
    IssueRange,
    Negotiator,
    Preferences,
    Role,
    Weights,
    boulware,
    conceder,
    negotiate,
)
from agentmarket.types import ETH, content_hash

ETHER = 10**18
MILLI = 10**15
HOURS = 4  # GPU-hours in the deal


def eth(wei: int) -> str:
    return f"{wei / ETHER:.4f} ETH"


class Story:
    def __init__(self, console: Console, market: Market):
        self.console = console
        self.market = market
        self.table = Table(show_lines=False, title="every transaction of the story")
        for col in ("#", "agent", "what happened", "tx", "gas"):
            self.table.add_column(col, justify="right" if col in ("#", "gas") else "left")
        self.n = 0
        self.records: list[dict[str, Any]] = []  # every transaction, for --json

    def say(self, text: str) -> None:
        self.console.print(text)

    def tx(self, agent: Agent, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` (one or more transactions by ``agent``) and print each with hash and gas."""
        gas0, count0 = agent.gas_used, agent.tx_count
        result = action()
        receipt = agent.last_receipt
        self.n += 1
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        gas = agent.gas_used - gas0
        more = f" ({agent.tx_count - count0} txs)" if agent.tx_count - count0 > 1 else ""
        self.table.add_row(str(self.n), agent.name, what, tx_hash[:14] + "…", f"{gas:,}{more}")
        self.records.append(
            {
                "n": self.n,
                "agent": agent.name,
                "what": what,
                "tx": tx_hash,
                "gas": gas,
                "txs": agent.tx_count - count0,
            }
        )
        self.console.print(
            f"  [green]tx {self.n}[/] {agent.name}: {what}  [dim]{tx_hash[:18]}… gas {gas:,}{more}[/]"
        )
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", default="embedded", help="embedded (default) or anvil")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print what happened as one JSON document")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 130), quiet=args.json)
    started = time.perf_counter()
    with console.status("starting the chain and deploying the contracts..."):
        chain = Chain.from_name(args.chain)
        if not chain.is_local:
            # the story moves the clock (a delivery window, a missed deadline): refuse a remote chain before
            # a single transaction is sent, rather than lock funds and stop halfway
            chain.close()
            raise ConfigError(
                f"the demo moves the chain's clock and needs a local chain, not {args.chain!r} "
                "(fix: --chain anvil, or the default embedded chain)"
            )
        market = Market.connect(chain)
    with chain, market:
        s = Story(console, market)
        s.say(
            f"[bold]Chain[/] {market.chain.kind} (id {market.chain.chain_id}); contracts: "
            + ", ".join(f"{n} {a[:10]}…" for n, a in market.suite.addresses.items())
        )
        gpu = resource_id("gpu-hour")
        reference = 12 * MILLI  # the owner's idea of a fair price per GPU-hour
        mandate = Mandate(budget={ETH: 200 * MILLI}, price_bands={gpu: PriceBand(reference, 2_500)})
        trainer = market.agent("trainer", fund=ETHER, mandate=mandate)
        provider = market.agent("gpu-provider", fund=ETHER)
        s.say(f"[bold]Agents[/] (fresh keys, 1 ETH each from the faucet): {trainer}, {provider}")
        s.say(
            f"  trainer's mandate: spend at most {eth(200 * MILLI)} in total and at most 25% above "
            f"{eth(reference)} per GPU-hour; it is enforced before any transaction is signed.\n"
        )

        # -- 1. negotiation --------------------------------------------------------------------------
        s.say(f"[bold]1. Negotiation[/] over {HOURS} GPU-hours: total price, delivery time, provider's bond")
        total = HOURS * reference
        buyer_prefs = Preferences(
            IssueRange(worst=total * 5 // 4, best=total * 3 // 5),
            IssueRange(worst=8 * 3600, best=3600),
            IssueRange(worst=0, best=total // 2),
            Weights(0.6, 0.25, 0.15),
            reservation=0.1,
        )
        seller_prefs = Preferences(
            IssueRange(worst=total * 3 // 4, best=total * 3 // 2),
            IssueRange(worst=3600, best=12 * 3600),
            IssueRange(worst=total // 3, best=0),
            Weights(0.6, 0.25, 0.15),
            reservation=0.1,
        )
        result = negotiate(
            Negotiator(Role.BUYER, buyer_prefs, boulware(0.3), "trainer"),
            Negotiator(Role.SELLER, seller_prefs, conceder(2.0), "gpu-provider"),
            max_rounds=16,
            rng=random.Random(args.seed),
        )
        for step in result.trace:
            who = "trainer " if step.actor is Role.BUYER else "provider"
            t = step.terms
            s.say(
                f"  {who} {step.action:6} price {eth(t.price)}, delivery {t.delivery_seconds / 3600:.1f} h, "
                f"bond {eth(t.bond)}  [dim](utility: trainer {step.buyer_utility:.2f}, "
                f"provider {step.seller_utility:.2f})[/]"
            )
        deal_terms = result.agreement
        if deal_terms is None:
            raise SystemExit("no agreement (try another --seed)")
        unit_price = deal_terms.price // HOURS
        s.say(
            f"  [bold]agreed[/]: {eth(unit_price * HOURS)} for {HOURS} GPU-hours "
            f"({eth(unit_price)}/h), delivery within {deal_terms.delivery_seconds / 3600:.1f} h, "
            f"bond {eth(deal_terms.bond)}\n"
        )

        # -- 2. signed offer, filled ---------------------------------------------------------------------
        s.say(
            "[bold]2. The provider signs the agreement as an offer reserved for the trainer; the trainer fills it[/]"
        )
        bond_per_unit = deal_terms.bond // HOURS
        if bond_per_unit:
            s.tx(
                provider,
                f"deposits its bond {eth(bond_per_unit * HOURS)} in the OfferBook",
                lambda: provider.offers.deposit(bond_per_unit * HOURS),
            )
        spec = content_hash(f"{HOURS}x H100 GPU-hours: fine-tune run, results = checkpoint hash")
        signed = provider.offers.offer(
            "sell",
            "gpu-hour",
            unit_price,
            HOURS,
            taker=trainer.address,
            bond_per_unit=bond_per_unit,
            delivery=deal_terms.delivery_seconds,
            terms_hash=spec,
            expiry=timedelta(minutes=30),
        )
        s.say(
            f"  signed offer {signed.hash.hex()[:16]}… (EIP-712, no transaction, no gas); "
            f"signature verifies to {signed.verify()[:10]}…"
        )
        fill = s.tx(
            trainer,
            f"fills the offer: {eth(unit_price * HOURS)} locked in escrow",
            lambda: trainer.fill(signed),
        )
        deal = fill.deal
        s.say(
            f"  escrow deal #{deal.id} is {deal.state.name}: price {eth(deal.amount)} + bond {eth(deal.bond)} "
            f"held by the contract; deliver by {time.strftime('%H:%M', time.gmtime(deal.terms.deliver_by))} UTC"
        )
        try:
            trainer.buy(provider, 30 * MILLI * HOURS, resource="gpu-hour", units=HOURS)
        except MandateViolation as exc:
            s.say(
                f"  (an overpriced buy of {eth(30 * MILLI * HOURS)} is refused by the mandate before signing: "
                f"[italic]{exc}[/]; nonce unchanged)"
            )

        # -- 3. delivery, acceptance, payment ---------------------------------------------------------------
        s.say("\n[bold]3. Delivery and payment[/]")
        market.chain.advance_time(deal_terms.delivery_seconds // 2)
        deal = s.tx(
            provider,
            "submits the hash of its result (the checkpoint)",
            lambda: provider.escrow.submit(deal, content_hash("checkpoint step 12000 weights")),
        )
        deal = s.tx(
            trainer, "accepts the delivery: the escrow pays the provider", lambda: trainer.escrow.accept(deal)
        )
        st = deal.settlement
        s.say(
            f"  deal #{deal.id} {deal.state.name}: provider received {eth(st.to_seller)} "
            f"(price - {eth(st.fee)} protocol fee + its bond back)"
        )

        # -- 4. ratings ----------------------------------------------------------------------------------
        if "ReputationRegistry" in market.suite:
            s.say("\n[bold]4. Ratings[/] (only the two parties of a settled, paid deal can rate, once each)")
            s.tx(trainer, "rates the provider 95/100", lambda: trainer.reputation.rate(deal, 95, tag="gpu"))
            s.tx(provider, "rates the trainer 90/100", lambda: provider.reputation.rate(deal, 90, tag="gpu"))
            rep = trainer.reputation.reputation(provider.address)
            s.say(f"  provider's reputation: {rep.count} rating(s), value-weighted score {rep.score:.0f}")

        # -- 5. the refund path ------------------------------------------------------------------------------
        s.say("\n[bold]5. Deal 2: the provider misses its deadline[/]")
        deal2 = s.tx(
            trainer,
            f"buys 1 GPU-hour at {eth(reference)} with a {eth(reference // 2)} bond asked",
            lambda: trainer.buy(
                provider,
                reference,
                resource="gpu-hour",
                units=1,
                deliver_by=timedelta(hours=2),
                bond=reference // 2,
            ),
        )
        deal2 = s.tx(provider, "posts its bond", lambda: provider.escrow.post_bond(deal2))
        market.chain.advance_time(2 * 3600 + 1)
        s.say("  ... two hours pass without a delivery ...")
        keeper = market.agent("keeper", fund=ETHER // 10)
        deal2 = s.tx(
            keeper, "anyone may trigger the refund after the deadline", lambda: keeper.escrow.refund(deal2)
        )
        s.say(
            f"  deal #{deal2.id} {deal2.state.name}: trainer got back {eth(deal2.settlement.to_buyer)} "
            "(its price + the provider's bond)"
        )

        console.print()
        console.print(s.table)
        balance, totals = market.escrow.solvency()
        if args.json:
            print(
                json.dumps(
                    {
                        "chain": market.chain.kind,
                        "chainId": market.chain.chain_id,
                        "contracts": market.suite.addresses,
                        "transactions": s.records,
                        "deals": [
                            {
                                "id": d.id,
                                "state": d.state.name,
                                "toSeller": d.settlement.to_seller,
                                "toBuyer": d.settlement.to_buyer,
                            }
                            for d in (deal, deal2)
                        ],
                        "escrowBalance": balance,
                        "solvent": balance == totals.accounted,
                        "budgetSpent": trainer.guard.spent(),
                    },
                    indent=2,
                )
            )
        s.say(
            f"escrow holds {eth(balance)} = locked {eth(totals.locked)} + credits {eth(totals.credits)} + fees "
            f"{eth(totals.fees)}: solvent = {balance == totals.accounted}.  "
            f"trainer spent {eth(trainer.guard.spent())} of its {eth(200 * MILLI)} budget.  "
            f"({time.perf_counter() - started:.1f}s)"
        )


if __name__ == "__main__":
    try:
        main()
    except AgentMarketError as exc:
        print(f"demo_trade: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

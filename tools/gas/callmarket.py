"""Gas scenarios of the call market (full-transaction gasUsed on the embedded chain), all in ETH.

Steady state, like the other families: the escrow already holds an ETH deal (its per-asset totals word
exists), makers are existing funded accounts whose market account word exists (they traded before), and
batch ids, prices and quantities are small fixed numbers, so calldata gas is stable.

* ``call.order``: a bid that brings exactly its lock as value (the lock lives in the order word).
* ``call.order_ask_bonded``: an ask in a batch whose terms ask a seller bond (brought as value).
* ``call.clear_per_order``: verifying the clearing price of a batch of 50 bids and 50 asks, per order.
* ``call.settle_per_trade``: one settlement transaction pairing 50 unit bids with 50 unit asks of 100
  distinct makers into 50 escrow deals, per trade (escrow deal included). Every bid is above the price,
  so each buyer is credited the difference; makers already hold a market credit (steady state: they traded
  before). A maker's very first credit creates its credit word: +~17k gas on that trade.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agentmarket.types import ZERO_ADDRESS as ZERO

from . import GasEnv, scenario
from .auctions import _terms, _warm_escrow

TRADES = 50
UNIT = 10**15  # price tick: tickExp 15
GAS = 400_000


def _market(env: GasEnv) -> Any:
    return env.suite["CallMarket"]


def _open(env: GasEnv, opener: LocalAccount, **terms: Any) -> tuple[int, tuple[Any, ...]]:
    market, chain = _market(env), env.chain
    template = _terms(opener.address, **terms)
    params = (chain.now() + 3600, 3600, 15)
    chain.transactor.transact(opener, market.functions.openBatch(template, params), gas=GAS)
    batch_id = int(market.functions.nextBatchId().call()) - 1
    return batch_id, template


def _steady_maker(env: GasEnv, maker: LocalAccount) -> None:
    """The maker's credit word exists: it keeps a small credit from earlier trading."""
    env.chain.transactor.transact(maker, _market(env).functions.deposit(ZERO, 0), value=1, gas=GAS)


@scenario("call.order")
def order(env: GasEnv) -> int:
    chain, fns = env.chain, _market(env).functions
    _warm_escrow(env)
    batch_id, _ = _open(env, chain.accounts[0])
    maker = chain.accounts[1]
    _steady_maker(env, maker)
    chain.transactor.transact(chain.accounts[2], fns.submitBid(batch_id, 90, 1), value=90 * UNIT, gas=GAS)
    receipt = chain.transactor.transact(maker, fns.submitBid(batch_id, 100, 2), value=200 * UNIT, gas=GAS)
    return int(receipt["gasUsed"])


@scenario("call.order_ask_bonded")
def order_ask_bonded(env: GasEnv) -> int:
    chain, fns = env.chain, _market(env).functions
    _warm_escrow(env)
    batch_id, _ = _open(env, chain.accounts[0], bond=10 * UNIT)
    maker = chain.accounts[1]
    _steady_maker(env, maker)
    chain.transactor.transact(chain.accounts[2], fns.submitAsk(batch_id, 90, 1), value=10 * UNIT, gas=GAS)
    receipt = chain.transactor.transact(maker, fns.submitAsk(batch_id, 100, 2), value=20 * UNIT, gas=GAS)
    return int(receipt["gasUsed"])


def _full_batch(env: GasEnv) -> tuple[int, tuple[Any, ...]]:
    """50 unit bids (prices 150..199) and 50 unit asks (prices 50..99) of 100 distinct makers, window
    closed: every order crosses, so all 50 pairs trade at the midpoint price."""
    chain, fns = env.chain, _market(env).functions
    _warm_escrow(env)
    batch_id, template = _open(env, chain.accounts[0])
    tx = chain.transactor
    for i in range(TRADES):
        buyer = Account.from_key(keccak(text=f"call buyer {i}"))  # deterministic: stable calldata gas
        seller = Account.from_key(keccak(text=f"call seller {i}"))
        for who in (buyer, seller):
            tx.transact(chain.accounts[0], to=who.address, value=10**18, gas=21_000)
            _steady_maker(env, who)
        tx.transact(buyer, fns.submitBid(batch_id, 150 + i, 1), value=(150 + i) * UNIT, gas=GAS)
        tx.transact(seller, fns.submitAsk(batch_id, 50 + i, 1), gas=GAS)
    chain.advance_time(3601)
    return batch_id, template


@scenario("call.clear_per_order")
def clear_per_order(env: GasEnv) -> int:
    batch_id, template = _full_batch(env)
    # V = 50, a_50 = 99, b_50 = 150, no 51st units: interval [99, 150], midpoint 124
    receipt = env.chain.transactor.transact(
        env.chain.accounts[3], _market(env).functions.clear(batch_id, template, 124), gas=2_000_000
    )
    return int(receipt["gasUsed"]) // (2 * TRADES)


@scenario("call.settle_per_trade")
def settle_per_trade(env: GasEnv) -> int:
    batch_id, template = _full_batch(env)
    fns, tx, clearer = _market(env).functions, env.chain.transactor, env.chain.accounts[3]
    tx.transact(clearer, fns.clear(batch_id, template, 124), gas=2_000_000)
    receipt = tx.transact(clearer, fns.settle(batch_id, template, 1_000), gas=10_000_000)
    market = _market(env)
    logs = [log for log in receipt["logs"] if log["address"] == market.address]
    trades = market.events.TradeSettled().process_receipt({**receipt, "logs": logs})
    assert len(trades) == TRADES and all(int(t["args"]["dealId"]) for t in trades)
    return int(receipt["gasUsed"]) // TRADES

"""Gas scenarios of ReputationRegistry (full-transaction gasUsed on the embedded chain).

``reputation.rate`` is the steady state: the rated agent already has ratings in the asset and tag, and
the rated-bits word of the deal id range is in use (two bits per deal, 128 deals per word).
``reputation.rate_first`` is an agent's very first rating (three fresh storage words).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.reputation import ReputationClient, comment_hash, encode_tag

from . import GasEnv, scenario

PRICE = 10**17


def _accepted(env: GasEnv, buyer: EscrowClient, seller: EscrowClient) -> Any:
    deal = buyer.create(seller.account.address, PRICE, deliver_by=timedelta(days=1))  # type: ignore[union-attr]
    deal = seller.submit(deal, b"\x01" * 32)
    return buyer.accept(deal)


def _rate_gas(env: GasEnv, client: ReputationClient, deal: Any, score: int) -> int:
    fn = client.contract.functions.rate(
        deal.id, deal.terms.as_tuple(), score, encode_tag("compute"), comment_hash("fast and correct")
    )
    return int(env.chain.transactor.transact(client.account, fn)["gasUsed"])


def _setup(env: GasEnv) -> tuple[ReputationClient, EscrowClient, EscrowClient]:
    accounts = env.chain.accounts
    buyer = EscrowClient.from_suite(env.suite, accounts[1])
    return ReputationClient.from_suite(env.suite, accounts[1]), buyer, buyer.as_(accounts[2])


@scenario("reputation.rate")
def rate(env: GasEnv) -> int:
    rep, buyer, seller = _setup(env)
    first = _accepted(env, buyer, seller)
    second = _accepted(env, buyer, seller)
    rep.rate(first, 90, tag="compute")
    return _rate_gas(env, rep, second, 80)


@scenario("reputation.rate_first")
def rate_first(env: GasEnv) -> int:
    rep, buyer, seller = _setup(env)
    return _rate_gas(env, rep, _accepted(env, buyer, seller), 80)

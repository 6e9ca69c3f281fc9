"""market.token(): the documented test token, and the README's ERC-20 trade."""

from __future__ import annotations

import pytest

from agentmarket import Market
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import InvalidAmount
from agentmarket.types import DealState


def test_readme_erc20_trade(chain: Chain, suite: Suite) -> None:
    market = Market(chain, suite)
    usdc = market.token("USDC", decimals=6)
    assert usdc.contract.functions.decimals().call() == 6
    buyer, seller = market.agents(2, fund=10**17)
    usdc.mint(buyer, usdc.units("250"))
    deal = buyer.buy(seller, usdc.units("12.5"), asset=usdc.address, approve=True)
    assert deal.amount == 12_500_000 and deal.asset == usdc.address
    assert usdc.balance(buyer) == 237_500_000
    deal = seller.escrow.submit(deal, b"report")
    deal = buyer.escrow.accept(deal)
    assert deal.state == DealState.ACCEPTED
    paid = seller.escrow.credit(asset=usdc.address) + usdc.balance(seller)
    assert paid == deal.settlement.to_seller > 0
    with pytest.raises(InvalidAmount):
        usdc.units("0.0000001")  # finer than 6 decimals: refused, not rounded


@pytest.mark.anvil
def test_funding_many_agents_on_anvil_sends_nothing(anvil: Chain, anvil_suite: Suite) -> None:
    market = Market(anvil, anvil_suite)
    assert market.funder is not None
    funder_nonce = anvil.w3.eth.get_transaction_count(market.funder.address)
    funder_balance = anvil.w3.eth.get_balance(market.funder.address)
    agents = market.agents(200, fund=10**18)  # 200 ETH in total, no transfer
    assert all(anvil.w3.eth.get_balance(a.address) == 10**18 for a in agents[::40])
    assert anvil.w3.eth.get_transaction_count(market.funder.address) == funder_nonce
    assert anvil.w3.eth.get_balance(market.funder.address) == funder_balance
    market.fund(agents[0], 5)  # adds to what is there
    assert agents[0].balance() == 10**18 + 5

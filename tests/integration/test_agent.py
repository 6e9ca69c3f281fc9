"""Agent facade and Market: keys stay private, mandates refuse before anything is signed or sent."""

from __future__ import annotations

import pickle
import re
from datetime import timedelta
from pathlib import Path

import pytest

from agentmarket.agent import Agent, resource_id
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import ConfigError, InsufficientFunds, MandateViolation
from agentmarket.mandate import ETH, Mandate, PriceBand
from agentmarket.market import Market
from agentmarket.types import DealState, content_hash

TOKEN = "0x00000000000000000000000000000000000000AA"
FINNEY = 10**15


@pytest.fixture
def market(chain: Chain, suite: Suite) -> Market:
    return Market(chain, suite)


def _frozen(chain: Chain, agent: Agent) -> tuple[int, int]:
    return chain.w3.eth.block_number, agent.nonce


def test_repr_and_errors_never_show_the_key(market: Market, tmp_path: Path) -> None:
    agent = market.agent("alice", fund=FINNEY)
    key_hex = agent.account.key.hex()
    for text in (
        repr(agent),
        str(agent),
        repr(agent.escrow),
        repr(agent.chain.transactor.signing_policy(agent.address)),
    ):
        assert (key_hex.removeprefix("0x") not in text and agent.address in text) or "Escrow" in text
    with pytest.raises(TypeError):
        pickle.dumps(agent)
    path = agent.save_keystore(tmp_path / "alice.json", "pw")
    assert key_hex.removeprefix("0x") not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    again = Agent.from_keystore(path, "pw", market.chain, market.suite)
    assert again.address == agent.address
    with pytest.raises(ConfigError) as info:
        Agent.from_keystore(path, "wrong")
    assert key_hex.removeprefix("0x") not in str(info.value)
    with pytest.raises(ConfigError) as info2:
        Agent.from_key("0x1234")
    assert "1234" not in str(info2.value)


@pytest.mark.parametrize(
    "mandate, kwargs, match",
    [
        (Mandate(budget={ETH: 5 * FINNEY}), {"price": 6 * FINNEY}, "budget"),
        (Mandate(max_per_deal={ETH: 2 * FINNEY}), {"price": 3 * FINNEY}, "per-deal cap"),
        (Mandate(allowed_assets=frozenset({TOKEN})), {"price": FINNEY}, "not allowed"),
        (
            Mandate(price_bands={resource_id("gpu-hour"): PriceBand(FINNEY, 500)}),
            {"price": 4 * FINNEY, "units": 3, "resource": "gpu-hour"},
            "band ceiling",
        ),
    ],
)
def test_mandate_breach_sends_nothing(market: Market, mandate: Mandate, kwargs: dict, match: str) -> None:
    buyer = market.agent("buyer", fund=10**17, mandate=mandate)
    seller = market.agent("seller", fund=0)
    before = _frozen(market.chain, buyer)
    balance = buyer.balance()
    with pytest.raises(MandateViolation, match=match):
        buyer.buy(seller, deliver_by=timedelta(hours=1), **kwargs)
    assert _frozen(market.chain, buyer) == before
    assert buyer.balance() == balance
    assert buyer.guard.spent() == 0  # a refused spend does not count


def test_every_value_path_is_guarded_not_only_buy(market: Market) -> None:
    buyer = market.agent("buyer", fund=10**17, mandate=Mandate(budget={ETH: 3 * FINNEY}))
    seller = market.agent("seller", fund=0)
    before = _frozen(market.chain, buyer)
    # the escrow client directly
    with pytest.raises(MandateViolation):
        buyer.escrow.create(seller.address, 4 * FINNEY, deliver_by=timedelta(hours=1))
    # a raw transfer through the agent's chain view
    with pytest.raises(MandateViolation):
        buyer.chain.transactor.transact(buyer.account, to=seller.address, value=4 * FINNEY, gas=21_000)
    # an ERC-20 approve counts against that token (no budget named for it -> nothing allowed)
    data = bytes.fromhex("095ea7b3") + bytes(12) + bytes.fromhex(seller.address[2:]) + (5).to_bytes(32, "big")
    with pytest.raises(MandateViolation):
        buyer.chain.transactor.transact(buyer.account, to=TOKEN, data=data, gas=60_000)
    assert _frozen(market.chain, buyer) == before


def test_rate_limit(market: Market) -> None:
    buyer = market.agent("buyer", fund=10**17, mandate=Mandate(max_actions=2, per_seconds=3600))
    seller = market.agent("seller", fund=0)
    buyer.buy(seller, FINNEY)
    buyer.buy(seller, FINNEY)
    before = _frozen(market.chain, buyer)
    with pytest.raises(MandateViolation, match="rate limit"):
        buyer.buy(seller, FINNEY)
    assert _frozen(market.chain, buyer) == before


def test_failed_transaction_gives_budget_back(market: Market) -> None:
    buyer = market.agent("buyer", fund=10**16, mandate=Mandate(budget={ETH: 10**18}))
    seller = market.agent("seller", fund=0)
    with pytest.raises(InsufficientFunds):  # more than the agent holds: the client refuses before sending
        buyer.buy(seller, 10**17)
    assert buyer.guard.spent() == 0
    with pytest.raises(RuntimeError), buyer.spending(FINNEY):
        raise RuntimeError("strategy changed its mind")
    assert buyer.guard.spent() == 0


def test_trade_through_the_facade_and_budget_accounting(market: Market) -> None:
    gpu = resource_id("gpu-hour")
    buyer = market.agent(
        "buyer",
        fund=10**17,
        mandate=Mandate(budget={ETH: 10 * FINNEY}, price_bands={gpu: PriceBand(2 * FINNEY, 1_000)}),
    )
    seller = market.agent("seller", fund=10**17)
    deal = buyer.buy(seller, 2 * FINNEY, resource="gpu-hour", deliver_by=timedelta(hours=2))
    assert deal.state == DealState.FUNDED and buyer.guard.spent() == 2 * FINNEY
    deal = seller.escrow.submit(deal, content_hash("weights.bin"))
    deal = buyer.escrow.accept(deal)
    assert deal.state == DealState.ACCEPTED and deal.settlement is not None
    assert deal.settlement.to_seller + deal.settlement.fee == 2 * FINNEY
    assert buyer.guard.remaining() == 8 * FINNEY
    # the seller's actions move no value out of its wallet, so its (empty) mandate never interferes
    assert seller.guard.spent() == 0


def test_missing_family_is_a_clear_error(market: Market) -> None:
    agent = market.agent("a", fund=0)
    with pytest.raises((AttributeError, ConfigError)):
        agent.client("nonexistent")
    bare = Agent.create()
    with pytest.raises(ConfigError):
        bare.escrow  # noqa: B018 - no suite
    with pytest.raises(AttributeError):
        bare.not_an_attribute  # noqa: B018


def test_readme_quickstart_runs() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "README Quickstart has no python block"
    namespace: dict = {"__name__": "readme"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["deal"].state == DealState.ACCEPTED

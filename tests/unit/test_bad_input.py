"""Input that cannot hurt: every public entry point refuses junk with a typed error naming the parameter,
before anything is signed or sent (no transaction, no nonce consumed, no balance moved).

Two layers: the 28 inputs a new user actually typed (issue 13), each pinned to its error class and
parameter; and a hypothesis sweep that feeds generated junk into every amount/address/asset slot of
every public method and checks the chain did not move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmarket import Mandate, Market, PriceBand, resource_id
from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import (
    AgentMarketError,
    InvalidAddress,
    InvalidAmount,
    InvalidInput,
    NotAContract,
)
from agentmarket.types import ETH
from agentmarket.units import ether, to_units

CODELESS = "0x" + "11" * 20


def _bad_checksum(address: str) -> str:
    """``address`` with the case of one letter flipped: mixed case, wrong EIP-55 checksum."""
    body = address[2:]
    for i, ch in enumerate(body):
        if ch.isalpha():
            flipped = body[:i] + ch.swapcase() + body[i + 1 :]
            if flipped.lower() != flipped and flipped.upper() != flipped:
                return "0x" + flipped
    raise AssertionError("address without letters")


@dataclass
class World:
    market: Market
    alice: Agent
    bob: Agent

    def fingerprint(self) -> tuple[Any, ...]:
        """What a sent transaction would change: block height, nonces and balances of everyone involved."""
        w3 = self.market.w3
        people = [self.market.funder.address, self.alice.address, self.bob.address]  # type: ignore[union-attr]
        return (
            w3.eth.block_number,
            tuple(w3.eth.get_transaction_count(p, "pending") for p in people),
            tuple(w3.eth.get_balance(p) for p in people),
        )


@pytest.fixture(scope="module")
def world(_embedded: tuple[Chain, Suite]) -> Iterator[World]:
    chain, suite = _embedded
    snap = chain.snapshot()
    market = Market(chain, suite)
    alice, bob = market.agents(2, fund=ether(1))
    yield World(market, alice, bob)
    chain.revert(snap)
    chain.transactor.reset_nonces()


def refused(world: World, call: Callable[[], Any], error: type[Exception], param: str | None) -> None:
    before = world.fingerprint()
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, AgentMarketError)
    if param is not None:
        assert getattr(info.value, "param", None) == param, str(info.value)
    assert world.fingerprint() == before, "a refused call changed the chain"


# -- the inputs of issue 13, one by one -----------------------------------------------------------------

CASES: list[tuple[str, Callable[[World], Any], type[Exception], str | None]] = [
    ("seller not-an-address", lambda w: w.alice.buy("not-an-address", 10), InvalidAddress, "seller"),
    ("seller 0x1234", lambda w: w.alice.buy("0x1234", 10), InvalidAddress, "seller"),
    ("asset USDC", lambda w: w.alice.buy(w.bob, 10, asset="USDC"), InvalidAddress, "asset"),
    (
        "seller bad checksum",
        lambda w: w.alice.buy(_bad_checksum(w.bob.address), 10),
        InvalidAddress,
        "seller",
    ),
    (
        "asset bad checksum",
        lambda w: w.alice.buy(w.bob, 10, asset=_bad_checksum(w.market.suite["OfferBook"].address)),
        InvalidAddress,
        "asset",
    ),
    ("asset without code", lambda w: w.alice.buy(w.bob, 10, asset=CODELESS), NotAContract, "asset"),
    ("price '1000'", lambda w: w.alice.buy(w.bob, "1000"), InvalidAmount, "price"),
    ("units '2'", lambda w: w.alice.buy(w.bob, 1000, units="2"), InvalidAmount, "units"),
    ("price 2.7", lambda w: w.alice.buy(w.bob, 2.7), InvalidAmount, "price"),
    ("price 1.1e18", lambda w: w.alice.buy(w.bob, 1.1 * 10**18), InvalidAmount, "price"),
    ("price True", lambda w: w.alice.buy(w.bob, True), InvalidAmount, "price"),
    ("price Decimal 1000.9", lambda w: w.alice.buy(w.bob, Decimal("1000.9")), InvalidAmount, "price"),
    ("price -1", lambda w: w.alice.buy(w.bob, -1), InvalidAmount, "price"),
    ("PriceBand(-1, 10)", lambda w: PriceBand(-1, 10), InvalidAmount, "reference_unit_price"),
    ("PriceBand('10', 10)", lambda w: PriceBand("10", 10), InvalidAmount, "reference_unit_price"),
    ("PriceBand(10, 2.5)", lambda w: PriceBand(10, 2.5), InvalidAmount, "max_premium_bps"),
    (
        "band keyed by name",
        lambda w: Mandate(price_bands={"gpu-hour": PriceBand(10)}),
        InvalidInput,
        "price_bands",
    ),
    ("budget keyed by USDC", lambda w: Mandate(budget={"USDC": 10}), InvalidAddress, "budget key"),
    ("budget 1.5", lambda w: Mandate(budget={ETH: 1.5}), InvalidAmount, f"budget[{ETH}]"),
    ("fund -1", lambda w: w.market.fund(w.alice, -1), InvalidAmount, "amount"),
    ("fund 0.5", lambda w: w.market.fund(w.alice, 0.5), InvalidAmount, "amount"),
    ("fund not-an-address", lambda w: w.market.fund("not-an-address", 1), InvalidAddress, "agent"),
    (
        "escrow amount '5'",
        lambda w: w.alice.escrow.create(w.bob.address, "5", deliver_by=timedelta(hours=1)),
        InvalidAmount,
        "amount",
    ),
    (
        "escrow bond 0.1",
        lambda w: w.alice.escrow.create(w.bob.address, 5, bond=0.1, deliver_by=timedelta(hours=1)),
        InvalidAmount,
        "bond",
    ),
    (
        "offer unit_price 1.5",
        lambda w: w.alice.offers.build("sell", "gpu", 1.5, 1),
        InvalidAmount,
        "unit_price",
    ),
    (
        "channel deposit True",
        lambda w: w.alice.channels.open(w.bob.address, True, ttl=60),
        InvalidAmount,
        "deposit",
    ),
    ("channel payee USDC", lambda w: w.alice.channels.open("USDC", 5, ttl=60), InvalidAddress, "payee"),
    ("rating score 4.5", lambda w: w.alice.reputation.rate(1, 4.5), InvalidAmount, "score"),
]


@pytest.mark.parametrize(("name", "call", "error", "param"), CASES, ids=[c[0] for c in CASES])
def test_issue_inputs_are_refused_before_sending(
    world: World, name: str, call: Callable[[World], Any], error: type[Exception], param: str | None
) -> None:
    refused(world, lambda: call(world), error, param)


def test_a_name_keyed_band_cannot_be_built_and_an_id_keyed_band_binds() -> None:
    """The silent failure of v1: a band keyed by name never applied, and the agent paid 5x the band."""
    with pytest.raises(InvalidInput):
        Mandate(price_bands={"gpu-hour": PriceBand(100)})
    mandate = Mandate(price_bands={resource_id("gpu-hour"): PriceBand(100)})
    assert mandate.price_bands[resource_id("gpu-hour")].ceiling == 110


def test_units_helpers_are_exact() -> None:
    assert ether("0.01") == 10**16
    assert ether(2.7) == 27 * 10**17  # the float's repr, not its binary expansion
    assert to_units("12.5", 6) == 12_500_000
    with pytest.raises(InvalidAmount):
        to_units("0.0000001", 6)  # would round
    with pytest.raises(InvalidAmount):
        ether(True)


def test_valid_forms_still_pass(world: World) -> None:
    """The checks do not refuse what is fine: integral Decimal, lower-case addresses, Agent objects."""
    deal = world.alice.buy(world.bob.address.lower(), Decimal(1000))
    assert deal.amount == 1000
    assert world.alice.escrow.credit(world.bob.address.upper().replace("0X", "0x")) == 0


# -- generated junk into every slot ---------------------------------------------------------------------

NOT_AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.integers(max_value=-1),
    st.integers(min_value=2**256),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).filter(lambda d: d != d.to_integral_value()),
    st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{1,5})?\Z"),
    st.none(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def not_addresses(draw: st.DrawFn) -> Any:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.text(max_size=45).filter(lambda s: not s.startswith("0x") or len(s) != 42))
    if choice == 1:
        return "0x" + draw(st.from_regex(r"\A[0-9a-f]{0,39}\Z"))  # too short
    if choice == 2:
        raw = draw(st.binary(min_size=20, max_size=20))
        return _bad_checksum(to_checksum_address(raw)) if any(c.isalpha() for c in raw.hex()) else "USDC"
    if choice == 3:
        return draw(st.sampled_from(["USDC", "ETH", "eth", "", "0x", "0xZZ" + "0" * 38]))
    if choice == 4:
        return draw(st.integers())
    return draw(st.none() | st.floats())


# ...plus well-formed addresses without code (an EOA or nothing at all is not a token); never ETH itself
NOT_ASSETS = st.one_of(
    not_addresses(),
    st.just(CODELESS),
    st.binary(min_size=20, max_size=20).map(to_checksum_address).filter(lambda a: a != ETH),
)

# (label, strategy of junk, call with the junk in one slot). Every slot is required, so None is junk too.
SLOTS: list[tuple[str, Any, Callable[[World, Any], Any]]] = [
    ("buy.price", NOT_AMOUNTS, lambda w, x: w.alice.buy(w.bob, x)),
    ("buy.units", NOT_AMOUNTS, lambda w, x: w.alice.buy(w.bob, 10, units=x)),
    ("buy.seller", not_addresses(), lambda w, x: w.alice.buy(x, 10)),
    ("buy.asset", NOT_ASSETS, lambda w, x: w.alice.buy(w.bob, 10, asset=x)),
    ("fund.amount", NOT_AMOUNTS, lambda w, x: w.market.fund(w.alice, x)),
    ("fund.agent", not_addresses(), lambda w, x: w.market.fund(x, 1)),
    ("spending.amount", NOT_AMOUNTS, lambda w, x: w.alice.spending(x).__enter__()),
    ("balance.asset", NOT_ASSETS, lambda w, x: w.alice.balance(x)),
    (
        "escrow.create.amount",
        NOT_AMOUNTS,
        lambda w, x: w.alice.escrow.create(w.bob.address, x, deliver_by=timedelta(hours=1)),
    ),
    (
        "escrow.create.seller",
        not_addresses(),
        lambda w, x: w.alice.escrow.create(x, 10, deliver_by=timedelta(hours=1)),
    ),
    (
        "escrow.create.asset",
        NOT_ASSETS,
        lambda w, x: w.alice.escrow.create(w.bob.address, 10, asset=x, deliver_by=timedelta(hours=1)),
    ),
    (
        "escrow.create.arbiter_fee_bps",
        NOT_AMOUNTS,
        lambda w, x: w.alice.escrow.create(
            w.bob.address, 10, arbiter_fee_bps=x, deliver_by=timedelta(hours=1)
        ),
    ),
    (
        "escrow.approve.amount",
        NOT_AMOUNTS,
        lambda w, x: w.alice.escrow.approve(w.market.suite["OfferBook"].address, x),
    ),
    ("escrow.withdraw.asset", NOT_ASSETS, lambda w, x: w.alice.escrow.withdraw(x)),
    ("offers.build.quantity", NOT_AMOUNTS, lambda w, x: w.alice.offers.build("sell", "gpu", 10, x)),
    ("offers.build.asset", NOT_ASSETS, lambda w, x: w.alice.offers.build("sell", "gpu", 10, 1, asset=x)),
    ("offers.deposit.amount", NOT_AMOUNTS, lambda w, x: w.alice.offers.deposit(x)),
    (
        "offers.deposit.for_",
        not_addresses().filter(lambda v: v is not None),
        lambda w, x: w.alice.offers.deposit(10, for_=x),
    ),
    ("channels.open.deposit", NOT_AMOUNTS, lambda w, x: w.alice.channels.open(w.bob.address, x, ttl=60)),
    ("channels.open.payee", not_addresses(), lambda w, x: w.alice.channels.open(x, 10, ttl=60)),
    (
        "channels.open.asset",
        NOT_ASSETS,
        lambda w, x: w.alice.channels.open(w.bob.address, 10, ttl=60, asset=x),
    ),
    (
        "auctions.create_english.reserve",
        NOT_AMOUNTS,
        lambda w, x: w.alice.auctions.create_english(
            w.alice.auctions.template(3600),
            reserve=x,
            start_time=w.alice.auctions.now(),
            end_time=w.alice.auctions.now() + 60,
        ),
    ),
    ("reputation.rate.score", NOT_AMOUNTS, lambda w, x: w.alice.reputation.rate(1, x)),
    ("mandate.budget", NOT_AMOUNTS, lambda w, x: Mandate(budget={ETH: x})),
    ("priceband.reference", NOT_AMOUNTS, lambda w, x: PriceBand(x)),
]


@pytest.mark.parametrize(("label", "junk", "call"), SLOTS, ids=[s[0] for s in SLOTS])
def test_junk_in_any_slot_is_refused_and_nothing_moves(
    world: World, label: str, junk: Any, call: Callable[[World, Any], Any]
) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=junk)
    def run(value: Any) -> None:
        before = world.fingerprint()
        with pytest.raises(AgentMarketError) as info:
            call(world, value)
        # a typed pre-flight error naming the slot's parameter (not a revert, not a web3 error)
        assert isinstance(info.value, InvalidInput), repr(info.value)
        assert info.value.param is not None, str(info.value)
        assert world.fingerprint() == before

    run()


@pytest.mark.anvil
def test_fund_minus_one_leaves_no_nonce_gap_on_anvil(anvil: Chain, anvil_suite: Suite) -> None:
    """v1: the RLP error came after the nonce was reserved, and every later send of the funder hung."""
    market = Market(anvil, anvil_suite)
    agent = market.agent(fund=0)
    with pytest.raises(InvalidAmount):
        market.fund(agent, -1)
    market.fund(agent, 5)  # would time out with a gap
    assert agent.balance() == 5


def test_a_transaction_that_cannot_be_signed_gives_its_nonce_back(world: World) -> None:
    """The Transactor's own safety net, below the argument checks: a signing failure releases the nonce."""
    tx = world.market.chain.transactor
    funder = world.market.funder
    assert funder is not None
    built = tx.build(funder, to=world.bob.address, value=1, gas=21_000)
    built["maxFeePerGas"] = -1  # unsignable
    with pytest.raises(Exception):  # noqa: B017 - whatever eth-account raises; the nonce is the point
        tx.send_signed(funder, built)
    before = world.market.w3.eth.get_balance(world.bob.address)
    world.market.fund(world.bob, 7)
    assert world.market.w3.eth.get_balance(world.bob.address) == before + 7

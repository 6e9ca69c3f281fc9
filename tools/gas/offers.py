"""Gas scenarios of the offers family (full-transaction gasUsed on the embedded chain).

Steady state, like the escrow scenarios: the escrow already holds a deal in the asset (its per-asset totals
word exists), the parties are existing funded accounts, and salts are a fixed 128-bit value (what the
client draws at random), so calldata gas is stable.

* ``offers.fill_signed_*``: the first fill of a fresh signed sell offer (signed fill v2: it opens the
  offer's head deal in the escrow under its keyed id; the OfferBook writes nothing, docs/fill-gas.md).
* ``offers.cancel``: the maker cancels the rest of a live, partially filled signed offer, in the steady
  state: its account word in the OfferBook exists because it cancelled another offer (another slot) of the
  same counter before. A cancel sets the offer's slot bit (the low 7 bits of its salt) in that word, a
  nonzero-to-nonzero write (docs/fill-gas.md, "Cancel slots"); every cancel after a maker's first costs this.
* ``offers.cancel_first``: the same cancel by a maker whose account word is still zero (no ETH deposit,
  never cancelled, never bumped its counter): the cancel creates the word (+~17k). Once created the word
  never returns to zero (a set slot bit stays until ``cancel_all``, which leaves a nonzero counter).
* ``offers.cancel_all``: a maker whose account word exists (it has an ETH deposit or bumped before); the
  very first bump of a maker with neither creates the word (+~17k gas).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import OffersClient, SignedOffer
from agentmarket.compiler import load_artifact
from agentmarket.types import ETH

from . import GasEnv, scenario

UNIT_PRICE = 10**15
SALT = 0xA5A5_5A5A_C3C3_3C3C_9696_6969_0F0F_F0F0
RESOURCE = "gpu-hour/h100"


def _clients(env: GasEnv) -> tuple[OffersClient, OffersClient]:
    accounts = env.chain.accounts
    maker = OffersClient.from_suite(env.suite, accounts[2])
    return maker, maker.as_(accounts[1])


def _warm_escrow(env: GasEnv, asset: str = ETH) -> None:
    """An open deal in ``asset`` so the escrow's per-asset totals word exists."""
    escrow = EscrowClient.from_suite(env.suite, env.chain.accounts[3])
    escrow.create(
        env.chain.accounts[4].address, 10**16, deliver_by=timedelta(days=1), asset=asset, approve=asset != ETH
    )


def _offer(maker: OffersClient, **terms: Any) -> SignedOffer:
    return maker.offer("sell", RESOURCE, UNIT_PRICE, 10, **{"salt": SALT, **terms})


def _token(env: GasEnv) -> Any:
    artifact = load_artifact("MockERC20")
    receipt = env.chain.transactor.deploy(env.chain.accounts[0], artifact, "Mock USD", "mUSD", 18)
    token = env.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    for account in env.chain.accounts[1:5]:
        env.chain.transactor.transact(env.chain.accounts[0], token.functions.mint(account.address, 10**24))
    return token


@scenario("offers.fill_signed_eth")
def fill_signed_eth(env: GasEnv) -> int:
    maker, taker = _clients(env)
    _warm_escrow(env)
    return taker.fill(_offer(maker), 3).gas_used


@scenario("offers.fill_signed_erc20")
def fill_signed_erc20(env: GasEnv) -> int:
    maker, taker = _clients(env)
    token = _token(env)
    _warm_escrow(env, token.address)
    taker.approve(token.address, 10**21)  # a standing allowance, decreased (not zeroed) by the fill
    return taker.fill(_offer(maker, asset=token.address), 3).gas_used


@scenario("offers.post")
def post(env: GasEnv) -> int:
    maker, _ = _clients(env)
    offer = maker.build("sell", RESOURCE, UNIT_PRICE, 10, salt=SALT)
    return maker.post(offer).gas_used


@scenario("offers.cancel")
def cancel(env: GasEnv) -> int:
    maker, taker = _clients(env)
    _warm_escrow(env)
    earlier = _offer(maker, salt=SALT ^ 1)  # another slot of the same counter
    maker.cancel(earlier)  # the maker's first cancel creates its account word
    signed = _offer(maker)
    taker.fill(signed, 3)
    return maker.cancel(signed).gas_used


@scenario("offers.cancel_first")
def cancel_first(env: GasEnv) -> int:
    maker, taker = _clients(env)
    _warm_escrow(env)
    signed = _offer(maker)
    taker.fill(signed, 3)
    return maker.cancel(signed).gas_used


@scenario("offers.cancel_all")
def cancel_all(env: GasEnv) -> int:
    maker, _ = _clients(env)
    maker.deposit(10**17)  # the maker's account word exists (ETH makers keep a deposit for bonds)
    return maker.cancel_all().gas_used

"""Gas scenarios of the escrow family (full-transaction gasUsed on the embedded chain).

Every figure is measured in steady state: the escrow already holds a deal in the same asset (so the
per-asset totals word is not being created) and the counterparties are existing, funded accounts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eth_account import Account
from eth_typing import HexStr
from eth_utils import keccak
from hexbytes import HexBytes

from agentmarket.clients.escrow import EscrowClient
from agentmarket.compiler import load_artifact
from agentmarket.types import Deal

from . import GasEnv, scenario

PRICE = 10**17
DAY = timedelta(days=1)
SPEC = b"\x5e" * 32  # a real deal always carries a terms hash: measure with non-zero calldata for it


def _gas(env: GasEnv, deal_or_receipt: Deal | Any) -> int:
    if not isinstance(deal_or_receipt, Deal):
        tx: HexStr | HexBytes = deal_or_receipt["transactionHash"]
    elif deal_or_receipt.tx_hash is None:  # a Deal rebuilt from events, not returned by its transaction
        raise ValueError("gas scenario: the deal carries no transaction hash to measure")
    else:
        tx = HexStr(deal_or_receipt.tx_hash)
    return int(env.chain.w3.eth.get_transaction_receipt(tx)["gasUsed"])


def _address(client: EscrowClient) -> str:
    """The address ``client`` acts as (every scenario party is a funded account)."""
    if client.account is None:
        raise ValueError("gas scenario: a party client without an account")
    return str(client.account.address)


def _parties(env: GasEnv) -> tuple[EscrowClient, EscrowClient, EscrowClient]:
    accounts = env.chain.accounts
    buyer = EscrowClient.from_suite(env.suite, accounts[1])
    return buyer, buyer.as_(accounts[2]), buyer.as_(accounts[3])


def _warm(buyer: EscrowClient, seller: str, **terms: Any) -> Deal:
    """An open deal in the asset, so measurements see a non-zero per-asset totals word."""
    return buyer.create(seller, PRICE, deliver_by=DAY, **terms)


def _submitted(env: GasEnv, **terms: Any) -> tuple[EscrowClient, EscrowClient, EscrowClient, Deal]:
    buyer, seller, arbiter = _parties(env)
    _warm(buyer, _address(seller))
    deal = buyer.create(
        _address(seller),
        PRICE,
        deliver_by=DAY,
        terms_hash=SPEC,
        **terms,
    )
    return buyer, seller, arbiter, seller.submit(deal, b"\x01" * 32)


@scenario("escrow.fund_eth")
def fund_eth(env: GasEnv) -> int:
    buyer, seller, _ = _parties(env)
    _warm(buyer, _address(seller))
    return _gas(env, buyer.create(_address(seller), PRICE, deliver_by=DAY, terms_hash=SPEC))


@scenario("escrow.fund_erc20")
def fund_erc20(env: GasEnv) -> int:
    buyer, seller, _ = _parties(env)
    token = _deploy_token(env)
    tx = env.chain.transactor
    tx.transact(env.chain.accounts[0], token.functions.mint(_address(buyer), 100 * PRICE))
    buyer.approve(token.address, 10 * PRICE)  # a standing allowance, decreased (not zeroed) by the pull
    _warm(buyer, _address(seller), asset=token.address)
    deal = buyer.create(
        _address(seller),
        PRICE,
        deliver_by=DAY,
        asset=token.address,
        terms_hash=SPEC,
    )
    return _gas(env, deal)


@scenario("escrow.submit")
def submit(env: GasEnv) -> int:
    return _gas(env, _submitted(env)[3])


@scenario("escrow.accept")
def accept(env: GasEnv) -> int:
    buyer, _, _, deal = _submitted(env)
    return _gas(env, buyer.accept(deal))


@scenario("escrow.accept_erc20")
def accept_erc20(env: GasEnv) -> int:
    """Accept of a token deal: the seller's payout is a measured transfer (balance read before and after,
    in a call frame of its own so a sender-tax token's over-charge is undone alone)."""
    buyer, seller, _ = _parties(env)
    token = _deploy_token(env)
    env.chain.transactor.transact(env.chain.accounts[0], token.functions.mint(_address(buyer), 100 * PRICE))
    buyer.approve(token.address, 10 * PRICE)
    _warm(buyer, _address(seller), asset=token.address)
    deal = buyer.create(_address(seller), PRICE, deliver_by=DAY, asset=token.address, terms_hash=SPEC)
    deal = seller.submit(deal, b"\x01" * 32)
    return _gas(env, buyer.accept(deal))


@scenario("escrow.refund")
def refund(env: GasEnv) -> int:
    buyer, seller, _ = _parties(env)
    _warm(buyer, _address(seller))
    deal = buyer.create(
        _address(seller),
        PRICE,
        deliver_by=timedelta(hours=1),
        terms_hash=SPEC,
    )
    env.chain.advance_time(2 * 3600)
    return _gas(env, seller.refund(deal))


@scenario("escrow.dispute")
def dispute(env: GasEnv) -> int:
    buyer, _, _, deal = _submitted(
        env,
        arbiter=_address(_parties(env)[2]),
        arbiter_fee_bps=100,
    )
    return _gas(env, buyer.dispute(deal))


@scenario("escrow.resolve")
def resolve(env: GasEnv) -> int:
    buyer, _, arbiter, deal = _submitted(
        env,
        arbiter=_address(_parties(env)[2]),
        arbiter_fee_bps=100,
    )
    deal = buyer.dispute(deal)
    return _gas(env, arbiter.resolve(deal, 5_000))


BATCH = 50


@scenario("batch.accept_per_deal")
def batch_accept_per_deal(env: GasEnv) -> int:
    """One buyer accepts 50 deals with 50 distinct (existing, funded) sellers in one acceptMany."""
    buyer, seller0, _ = _parties(env)
    _warm(buyer, _address(seller0))
    tx, fns = env.chain.transactor, buyer.contract.functions
    deals = []
    for i in range(BATCH):  # setup with fixed gas limits: no estimation, so the scenario stays fast
        seller = Account.from_key(keccak(text=f"batch seller {i}"))  # deterministic: stable calldata gas
        tx.transact(env.chain.accounts[0], to=seller.address, value=10**17, gas=21_000)
        terms = buyer.terms(seller.address, PRICE, deliver_by=DAY, terms_hash=SPEC)
        deal = buyer._created_from_receipt(
            tx.transact(buyer.account, fns.create(terms.as_tuple()), value=PRICE, gas=300_000)
        )
        tx.transact(seller, fns.submit(deal.id, terms.as_tuple(), b"\x02" * 32), gas=100_000)
        deals.append(deal)
    result = buyer.accept_many(deals)
    assert len(result.settled) == BATCH and not result.skipped
    return result.gas_used // BATCH


def _deploy_token(env: GasEnv) -> Any:
    artifact = load_artifact("MockERC20")
    receipt = env.chain.transactor.deploy(env.chain.accounts[0], artifact, "Mock USD", "mUSD", 18)
    return env.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

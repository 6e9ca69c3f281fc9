"""An external signer (hardware wallet, KMS) drives an agent: an eth-account-compatible object with an
address and signing methods but no raw key."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentmarket import Market
from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.types import DealState


class RemoteSigner:
    """Signs like a KMS would: the key lives elsewhere (here: a private LocalAccount), never on ``self``."""

    def __init__(self) -> None:
        self.__inner: LocalAccount = Account.create()
        self.address: str = self.__inner.address
        self.signed = 0

    def sign_transaction(self, tx: dict[str, Any]) -> Any:
        self.signed += 1
        return self.__inner.sign_transaction(tx)

    def unsafe_sign_hash(self, digest: bytes) -> Any:
        self.signed += 1
        return self.__inner.unsafe_sign_hash(digest)


def test_an_external_signer_trades_and_signs_offers(chain: Chain, suite: Suite) -> None:
    market = Market(chain, suite)
    signer = RemoteSigner()
    assert not hasattr(signer, "key")
    buyer = Agent(signer, chain, suite, name="kms")  # type: ignore[arg-type]
    seller = market.agent(fund=10**16)
    market.fund(buyer, 10**17)
    deal = buyer.buy(seller, 10**15)
    deal = seller.escrow.submit(deal, b"done")
    deal = buyer.escrow.accept(deal)
    assert deal.state == DealState.ACCEPTED
    assert signer.signed == 2  # create and accept went through the external signer
    offer = buyer.offers.offer("buy", "gpu-hour", 10**12, 1, taker=seller.address)  # signed remotely
    assert offer.verify() == buyer.address

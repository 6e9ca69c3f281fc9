"""A mintable ERC-20 for local chains, so an ERC-20 trade needs no artifact digging.

    with Market.connect() as market:
        usdc = market.token("USDC", decimals=6)
        alice, bob = market.agents(2)
        usdc.mint(alice, usdc.units("250"))          # 250 USDC
        deal = alice.buy(bob, usdc.units("12.5"), asset=usdc.address, approve=True)

The token is the test build's ``MockERC20`` (anyone may mint): never deploy it where value is real, which
is why :meth:`agentmarket.market.Market.token` refuses remote chains.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import validate
from .units import from_units, to_units

__all__ = ["TestToken"]


class TestToken:
    """A deployed mintable ERC-20: ``address``, ``symbol``, ``decimals``, ``mint``, ``balance``, ``units``."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, chain: Any, contract: Any, symbol: str, decimals: int, minter: Any):
        self.chain = chain
        self.contract = contract
        self.address: str = str(contract.address)
        self.symbol = symbol
        self.decimals = decimals
        self._minter = minter

    def __repr__(self) -> str:
        return f"TestToken({self.symbol}, decimals={self.decimals}, address={self.address})"

    def units(self, amount: str | int | Decimal) -> int:
        """Smallest units of ``amount`` tokens, exactly (``usdc.units("12.5") == 12_500_000``)."""
        return to_units(amount, self.decimals)

    def human(self, amount: int) -> Decimal:
        """Tokens in ``amount`` smallest units."""
        return from_units(amount, self.decimals)

    def mint(self, to: Any, amount: int) -> None:
        """Create ``amount`` smallest units for ``to`` (an Agent or an address)."""
        who = validate.address(to, "to", nonzero=True)
        amount = validate.amount(amount, "amount", positive=True)
        self.chain.transactor.transact(self._minter, self.contract.functions.mint(who, amount))

    def balance(self, who: Any) -> int:
        """Token balance of ``who`` in smallest units."""
        return int(self.contract.functions.balanceOf(validate.address(who, "who")).call())

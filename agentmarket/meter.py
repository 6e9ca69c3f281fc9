"""Per-call / per-token billing over a payment channel.

:class:`PayerMeter` (payer side) signs the next cumulative voucher for each unit of usage;
:class:`PayeeMeter` (payee side) verifies each voucher, commits it to the :class:`VoucherStore` and only
then acknowledges, so the payee never serves a call it does not durably hold payment for.

In-process, hand vouchers from one to the other. Across processes, run the payee as
``python -m agentmarket.meter payee --db PATH --chain-id N --contract ADDR --price P`` and write one JSON
line per payment, ``{"voucher": {...}, "units": n}``, to its stdin; it answers each line with
``{"ack": amount}`` after the commit, or ``{"error": "...", "kind": "..."}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from .errors import AgentMarketError, InsufficientFunds, InvalidInput
from .types import Voucher
from .vouchers import StoredVoucher, VoucherDomain, VoucherSigner, VoucherStore


class PayerMeter:
    """Payer side of a metered channel: keeps the cumulative total and signs the next voucher."""

    def __init__(
        self,
        signer: VoucherSigner,
        channel_id: bytes,
        deposit: int,
        *,
        price_per_unit: int = 1,
        spent: int = 0,
    ):
        if price_per_unit <= 0:
            raise InvalidInput("price_per_unit must be positive")
        self.signer = signer
        self.channel_id = bytes(channel_id)
        self.deposit = int(deposit)
        self.price_per_unit = int(price_per_unit)
        self.spent = int(spent)

    def __repr__(self) -> str:
        return f"PayerMeter(channel=0x{self.channel_id.hex()[:12]}…, spent={self.spent}/{self.deposit})"

    @property
    def remaining(self) -> int:
        return self.deposit - self.spent

    def pay(self, amount: int) -> Voucher:
        """Sign a voucher for ``amount`` more than the previous one."""
        if amount <= 0:
            raise InvalidInput("amount must be positive")
        if self.spent + amount > self.deposit:
            raise InsufficientFunds(
                f"channel deposit {self.deposit} cannot cover {self.spent} + {amount}; top up"
            )
        voucher = self.signer.sign(self.channel_id, self.spent + amount)
        self.spent += amount
        return voucher

    def pay_units(self, units: int = 1) -> Voucher:
        """Pay for ``units`` calls or tokens at ``price_per_unit``."""
        return self.pay(int(units) * self.price_per_unit)

    def topped_up(self, new_deposit: int) -> None:
        """Record a top-up so larger vouchers can be signed."""
        if new_deposit < self.deposit:
            raise InvalidInput("the deposit never shrinks")
        self.deposit = int(new_deposit)


class PayeeMeter:
    """Payee side of a metered channel: verifies, records (durably) and acknowledges each payment."""

    def __init__(self, store: VoucherStore, *, price_per_unit: int = 1):
        if price_per_unit <= 0:
            raise InvalidInput("price_per_unit must be positive")
        self.store = store
        self.price_per_unit = int(price_per_unit)

    def receive(self, voucher: Voucher, units: int = 1) -> StoredVoucher:
        """Accept ``voucher`` as payment for ``units``: it must add at least ``units * price_per_unit``.
        Returns after the voucher is committed; serve the call only then."""
        return self.store.accept(voucher, min_increment=int(units) * self.price_per_unit)

    def serve(self, infile: IO[str], outfile: IO[str]) -> int:
        """JSON-lines loop (see the module doc); returns the number of accepted vouchers."""
        accepted = 0
        for line in infile:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
                stored = self.receive(Voucher.from_json(message["voucher"]), int(message.get("units", 1)))
                reply: dict[str, Any] = {"ack": str(stored.voucher.amount)}
                accepted += 1
            except (AgentMarketError, ValueError, KeyError) as exc:
                reply = {"error": str(exc), "kind": type(exc).__name__}
            outfile.write(json.dumps(reply) + "\n")
            outfile.flush()
        return accepted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agentmarket.meter",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="role", required=True)
    payee = sub.add_parser("payee", help="verify and record vouchers from stdin, ack on stdout")
    payee.add_argument("--db", required=True)
    payee.add_argument("--chain-id", type=int, required=True)
    payee.add_argument("--contract", required=True)
    payee.add_argument("--price", type=int, default=1, help="price per unit in the asset's smallest unit")
    payee.add_argument(
        "--fast", action="store_true", help="synchronous=NORMAL (crash-safe, not power-loss-safe)"
    )
    args = parser.parse_args(argv)
    store = VoucherStore(args.db, VoucherDomain(args.chain_id, args.contract), durable=not args.fast)
    PayeeMeter(store, price_per_unit=args.price).serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared plumbing for the contract-family state machines.

Every machine runs on the worker's anvil (the ``anvil`` fixture: the whole test is reverted afterwards),
takes an ``evm_snapshot`` when an example starts and reverts to it in ``teardown`` (anvil snapshots are
single-use, so every example takes a fresh one). The machine keeps a pure-Python model of what the
contract must hold and compares it with the chain after every step.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from helpers import Driver, as_uint
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from agentmarket.errors import ContractRevert
from agentmarket.types import ETH

FOT_BPS = 100  # the fee-on-transfer mock charges 1%


def share(value: int, held: int, owed: int) -> int:
    """What a claim of ``value`` is paid by ``Credits`` (contracts/libraries/Credits.sol) while the contract
    holds ``held`` of an ERC-20 and its books say ``owed``: all of it while they match, else held / owed of
    it rounded down (a rebase or a donation is shared pro rata by every claim, in both directions)."""
    return value if held == owed else value * held // owed


def withdrawal(part: int, credit: int, held: int, owed: int) -> tuple[int, int]:
    """``Credits._withdraw`` of ``part`` (``withdraw``/``withdrawTo``: more than the credit) of ``credit``
    with ``held`` and ``owed`` read before the credit leaves the books (ETH: 0 and 0): (what it sends, the
    credit left afterwards), for a token that takes exactly what it sends. Off the books the credit is
    charged by what left scaled back (rounded up)."""
    claim = min(part, credit)
    if held == owed:
        return claim, credit - claim
    sent = claim * held // owed
    used = -(-sent * owed // held)
    return sent, credit - used if used < credit else 0


class Books:
    """The transient pending-payout counter of ``Credits._share`` per ERC-20 asset, and the share it pays.

    A settlement takes all its payouts off the books in one write and notes them as pending
    (``_notePending``); each payout then gets held / (books + pending) of its value, so every payout of one
    settlement gets the share held before it whatever their order. A payout nobody noted counts as pending
    itself. The counter lives in transient storage: ``end_transaction`` clears it."""

    def __init__(self) -> None:
        self.pending: dict[str, int] = {}

    def note_pending(self, asset: str, value: int) -> None:
        self.pending[asset] = self.pending.get(asset, 0) + value

    def payout(self, asset: str, value: int, books: int, held: int) -> int:
        """``_share(asset, value)`` with the books already without this payout: what leaves (whether or
        not the receiver takes it; a refused payout is credited whole)."""
        pending = max(self.pending.get(asset, 0), value)
        self.pending[asset] = pending - value
        return share(value, held, books + pending)

    def end_transaction(self) -> None:
        self.pending.clear()


# (max_examples, stateful_step_count) per profile; PROPERTY_EXAMPLES / PROPERTY_STEPS override.
DEFAULT_RUN = (10, 25)
LONG_RUN = (100, 50)


def machine_settings(default: tuple[int, int] = DEFAULT_RUN, long: tuple[int, int] = LONG_RUN) -> settings:
    profile = settings.get_current_profile_name()
    examples, steps = long if profile == "long" else default
    examples = int(os.environ.get("PROPERTY_EXAMPLES", examples))
    steps = int(os.environ.get("PROPERTY_STEPS", steps))
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


class ChainMachine(RuleBasedStateMachine):
    """Snapshot per example, an exact clock, step counting."""

    fast: Driver
    stats: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        self.snap = self.fast.snapshot()
        self.fast.reset()
        self.stats["examples"] += 1

    def teardown(self) -> None:
        self.fast.revert(self.snap)

    def count_step(self) -> None:
        self.stats["checks"] += 1

    def count_path(self, name: str) -> None:
        """Count a rare path the run reached (printed in the session summary: shows a profile covers it)."""
        self.stats[name] = self.stats.get(name, 0) + 1

    # Each machine's ``self.e`` lists the watched ETH holders (``holders``) and the ERC-20 balance
    # calls (``balance_calls`` with their ``balance_keys``); the model keeps ``balances`` and ``gas_base``.
    e: Any
    balances: dict[tuple[str, str], int]
    gas_base: dict[str, int]

    def _read(self, calls: list[tuple[str, bytes]]) -> tuple[list[bytes], dict[tuple[str, str], int]]:
        """One JSON-RPC batch: ``calls`` plus every watched balance in every asset."""
        e = self.e
        holders = e.holders
        batch: list[tuple[str, list[Any]]] = [("eth_getBalance", [h, "latest"]) for h in holders]
        batch += [
            ("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
            for to, data in e.balance_calls + calls
        ]
        results = self.fast.transport.batch(batch)
        for r in results:
            if isinstance(r, Exception):
                raise r
        # results = ETH balances of holders, then the token balance calls, then the caller's calls:
        # each zip takes the head of a longer list on purpose
        out: dict[tuple[str, str], int] = {
            (h, ETH): int(r, 16) for h, r in zip(holders, results, strict=False)
        }
        rest = [bytes.fromhex(r[2:]) for r in results[len(holders) :]]
        for (t, h), r in zip(e.balance_keys, rest, strict=False):
            out[(h, t)] = as_uint(r)
        return rest[len(e.balance_keys) :], out

    def arrives(self, asset: str, value: int) -> int:
        """What reaches the receiver of ``value`` in ``asset`` (the fee-on-transfer token keeps 1%)."""
        return value - value * FOT_BPS // 10_000 if asset == self.e.fot.address else value

    # Machines whose contract pushes payouts name it ``holder`` and say who ``refuses`` a payout.
    holder: str
    credits: dict[Any, int]

    def refuses(self, asset: str, to: str) -> bool:
        raise NotImplementedError

    def move_out(self, asset: str, to: str, value: int) -> None:
        self.balances[(self.holder, asset)] -= value
        self.balances[(to, asset)] = self.balances.get((to, asset), 0) + self.arrives(asset, value)

    def payout(self, asset: str, value: int) -> int:
        """What a payout of ``value`` sends (``Credits._share``). Machines whose contract never holds an
        asset off its books (no donations, no rebasing token): all of it."""
        return value

    def pay(self, asset: str, to: str, value: int) -> None:
        """The contract's ``_pay``: push its share, or credit the whole claim when the receiver refuses."""
        if value == 0:
            return
        out = self.payout(asset, value)
        if self.refuses(asset, to):
            self.credits[(to, asset)] = self.credits.get((to, asset), 0) + value
        else:
            self.move_out(asset, to, out)

    def gas(self, address: str) -> None:
        """Charge the gas the last transaction of ``address`` cost to the model balance."""
        spent = self.fast.gas_spent.get(address, 0)
        self.balances[(address, ETH)] -= spent - self.gas_base.get(address, 0)
        self.gas_base[address] = spent

    @staticmethod
    def assert_error(err: ContractRevert | None, name: str, args: dict[str, Any] | None = None) -> None:
        assert err is not None, f"expected {name}, the call succeeded"
        assert err.error_name == name, f"expected {name}{args or ''}, got {err}"
        if args:
            got = {k: err.arguments.get(k) for k in args}
            assert got == args, f"{name}: expected {args}, got {got}"


def run_machine(
    request: pytest.FixtureRequest,
    machine: type[ChainMachine],
    fast: Driver,
    default: tuple[int, int] = DEFAULT_RUN,
    long: tuple[int, int] = LONG_RUN,
) -> None:
    """Run ``machine`` under the active profile and record examples/steps for the session summary."""
    s = machine_settings(default, long)
    machine.fast = fast
    machine.stats = {"examples": 0, "checks": 0}
    tx0, failed0 = fast.txs, fast.failed_txs
    start = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=s)
    finally:
        stats = machine.stats
        request.node.user_properties.append(
            (
                "machine_stats",
                json.dumps(
                    {
                        "machine": machine.__name__,
                        "profile": settings.get_current_profile_name(),
                        "examples": stats["examples"],
                        "steps": stats["checks"] - stats["examples"],
                        "max_examples": s.max_examples,
                        "step_count": s.stateful_step_count,
                        "txs": fast.txs - tx0,
                        "reverted": fast.failed_txs - failed0,
                        "seconds": time.monotonic() - start,
                        "paths": {k: v for k, v in stats.items() if k not in ("examples", "checks")},
                    }
                ),
            )
        )

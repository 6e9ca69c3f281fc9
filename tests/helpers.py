"""Helpers shared by the contract tests (plain functions; fixtures live in conftest.py).

Imported as ``from helpers import ...``: pytest puts this folder on ``sys.path`` for the root conftest.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes

from agentmarket import compiler, errors
from agentmarket.chain import Chain
from agentmarket.clients.auctions import DealTemplate
from agentmarket.clients.escrow import EscrowClient
from agentmarket.errors import ContractRevert

#: The test build (mocks and attackers of contracts/test/, compiled by `agentmarket compile`, not shipped).
TEST_ARTIFACTS = compiler.test_artifacts_dir(Path(__file__).resolve().parents[1])


def load_artifact(name: str) -> dict[str, Any]:
    """An artifact of the test build, else of the package build."""
    if (TEST_ARTIFACTS / f"{name}.json").is_file():
        return compiler.load_artifact(name, TEST_ARTIFACTS)
    return compiler.load_artifact(name)


def register_test_errors() -> None:
    """Make the test build's custom errors decodable (the production revert table has only the package's)."""
    for path in sorted(TEST_ARTIFACTS.glob("*.json")):
        errors.register_abi(json.loads(path.read_text()).get("abi", []))


GAS = 3_000_000


def deploy(chain: Chain, name: str, *args: Any) -> Any:
    """Deploy the artifact ``name`` (test build first) from the first account; the web3 contract."""
    artifact = load_artifact(name)
    receipt = chain.transactor.deploy(chain.accounts[0], artifact, *args)
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def mint(chain: Chain, token: Any, accounts: Iterable[Any], amount: int) -> None:
    """Mint ``amount`` of the mock ``token`` to each of ``accounts`` (sent by the first account)."""
    for account in accounts:
        chain.transactor.transact(
            chain.accounts[0], token.functions.mint(account.address, amount), gas=200_000
        )


def send(chain: Chain, account: Any, fn: Any, value: int = 0, gas: int = GAS) -> Any:
    """Simulate on the pending block (exact timestamp, typed revert), then send with a fixed gas limit."""
    chain.transactor.call(fn, sender=account.address, value=value, block="pending")
    return chain.transactor.transact(account, fn, value=value, gas=gas)


def gas_cost(receipt: Any) -> int:
    """Wei paid for the gas of ``receipt``."""
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def assert_escrow_solvent(escrow: EscrowClient, assets: Iterable[str]) -> None:
    """docs/design.md §6.1 for each asset: the escrow's balance == locked + credits + fees."""
    for asset in assets:
        balance, totals = escrow.solvency(asset)
        assert balance == totals.accounted, f"insolvent in {asset}: {balance} != {totals}"


# -- driving a chain step by step (property machines, security tests) ----------------------------------------


def selector(signature: str) -> bytes:
    """The 4-byte selector of ``signature`` (``"balanceOf(address)"``)."""
    return bytes(keccak(text=signature)[:4])


def encode_call(signature: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    """Calldata for ``signature`` with ``args`` of ABI ``types`` (reads the machines encode once)."""
    return selector(signature) + abi_encode(list(types), list(args))


def as_uint(raw: bytes, index: int = 0) -> int:
    """Word ``index`` of ABI-encoded ``raw`` as an unsigned integer."""
    return int.from_bytes(raw[32 * index : 32 * index + 32], "big")


def decode(types: Sequence[str], raw: bytes) -> tuple[Any, ...]:
    return tuple(abi_decode(list(types), raw))


class Receipt(dict):  # type: ignore[type-arg]
    """A receipt as the library's pipeline returns it, plus ``ok``."""

    @property
    def ok(self) -> bool:
        return int(self["status"]) == 1


class Driver:
    """Steps a local chain through the library's one pipeline, with an exact clock and gas bookkeeping.

    Transactions go through ``chain.transactor`` (its nonce manager, signer and JSON-RPC transport;
    a fixed gas limit, so nothing is estimated) and are mined at a timestamp the caller chose
    (``tick``/``jump``); batched reads go through the same transport. What this adds for the machines:
    a mined failure's receipt instead of an exception (they predict failures and mine them to show they
    change nothing), the wei each sender spent on gas (so ETH balances are predicted exactly), and
    simulation on the pending block returning the typed revert instead of raising it.
    """

    def __init__(self, chain: Chain):
        self.chain = chain
        self.w3 = chain.w3
        self.tx = chain.transactor
        self.transport = self.tx.transport
        self.chain_id = chain.chain_id
        self.gas_spent: dict[str, int] = defaultdict(int)  # wei spent on gas per sender since reset()
        self.now = self.latest_timestamp()
        self.txs = 0
        self.failed_txs = 0  # mined and reverted (the machines' predicted failures)

    # -- state ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget nonces and gas bookkeeping, re-read the clock (after a revert)."""
        self.gas_spent.clear()
        self.now = self.latest_timestamp()
        self.tx.reset_nonces()

    def snapshot(self) -> Any:
        return self.chain.snapshot()

    def revert(self, snap: Any) -> None:
        self.chain.revert(snap)
        self.reset()

    def latest_timestamp(self) -> int:
        return int(self.transport.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def block_number(self) -> int:
        return int(self.transport.request("eth_blockNumber"), 16)

    # -- time --------------------------------------------------------------------------------------

    def tick(self) -> int:
        """The next transaction is mined one second after the previous block; returns that time."""
        self.now += 1
        self.chain.set_next_timestamp(self.now)
        return self.now

    def jump(self, seconds: int) -> int:
        """Mine an empty block ``seconds`` after the latest one (the clock moves forward)."""
        assert seconds >= 1
        self.now += int(seconds)
        self.chain.travel_to(self.now)
        return self.now

    # -- transactions -------------------------------------------------------------------------------

    def send(
        self,
        account: LocalAccount,
        to: str | None,
        data: bytes | str = b"",
        value: int = 0,
        gas: int = GAS,
        tick: bool = True,
    ) -> Receipt:
        """Send through the pipeline at ``now + 1`` (with ``tick``); the receipt, whatever its status."""
        if tick:
            self.tick()
        sent = self.tx.transact(account, to=to, data=data, value=value, gas=gas, wait=False)
        receipt = Receipt(self.tx.wait(sent, raise_on_revert=False))
        self.gas_spent[account.address] += gas_cost(receipt)
        self.txs += 1
        self.failed_txs += 0 if receipt.ok else 1
        return receipt

    def simulate(self, sender: str, to: str, data: bytes | str, value: int = 0) -> ContractRevert | None:
        """Run the call on the pending block (the timestamp set by :meth:`tick`); its typed revert or None."""
        try:
            self.tx.simulate({"from": sender, "to": to, "data": HexBytes(data), "value": value, "gas": GAS})
        except ContractRevert as revert:
            return revert
        return None

    def deploy(self, account: LocalAccount, name: str, *args: Any) -> Any:
        """Deploy the shipped artifact ``name`` (mined at ``now + 1``); the web3 contract."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.send(account, None, factory.constructor(*args).data_in_transaction, gas=8_000_000)
        assert receipt.ok, f"deploying {name} failed"
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    # -- reads -------------------------------------------------------------------------------------------

    def calls(self, items: Iterable[tuple[str, bytes | str]]) -> list[bytes]:
        """Batched eth_calls on the latest block: (to, calldata) -> raw return bytes."""
        results = self.transport.batch(
            [("eth_call", [{"to": to, "data": HexBytes(d).to_0x_hex()}, "latest"]) for to, d in items]
        )
        for r in results:
            if isinstance(r, Exception):
                raise r
        return [bytes(HexBytes(r)) for r in results]

    def eth_balances(self, addresses: Sequence[str]) -> list[int]:
        return [
            int(r, 16) for r in self.transport.batch([("eth_getBalance", [a, "latest"]) for a in addresses])
        ]


def token_sale_template(seller: Any, token: Any, arbiter: Any, *, bond: int = 10**17) -> DealTemplate:
    """The sale terms the token security tests share: delivery in 2 h, promised in 1 h, 1 h review and
    ruling windows, ``arbiter``, and a seller bond of 0.1 token (18 decimals)."""
    return DealTemplate(
        creator=seller.address,
        asset=token.address,
        delivery_delay=7200,
        promise_delay=3600,
        terms_hash=b"\x42" * 32,
        review_window=3600,
        ruling_window=3600,
        arbiter=arbiter.address,
        bond=bond,
    )

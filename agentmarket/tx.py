"""Send transactions: local signing, a nonce manager per account, revert decoding.

Every client sends through one :class:`Transactor` per chain, so nonces stay consistent when an agent
uses several clients, and every failure surfaces as a typed :mod:`agentmarket.errors` exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from .errors import ChainUnavailable, ContractRevert, TransactionReverted, TransactionTimeout, translate

T = TypeVar("T")

# Transport failures that mean "the node is not there", as opposed to a revert.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError)
try:  # requests is web3's HTTP transport
    import requests

    _CONNECTION_ERRORS += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
except ImportError:  # pragma: no cover
    pass


@dataclass(frozen=True)
class Sent:
    """A transaction that was sent; ``receipt`` is filled once it was mined."""

    tx_hash: str
    sender: str
    nonce: int
    receipt: TxReceipt | None = None


class Transactor:
    """Signs locally and sends transactions for the accounts of one chain.

    Nonces are tracked locally per account (thread-safe) and re-read from the chain after any error, so a
    failed send never leaves a gap. Gas is estimated unless given, which also simulates the call: a call
    that would revert raises its typed error before anything is sent.
    """

    FEE_CACHE_SECONDS = 5.0

    def __init__(self, chain: Any):
        self.chain = chain
        self.w3 = chain.w3
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fees: tuple[float, dict[str, int]] | None = None

    # -- nonces ------------------------------------------------------------------------------------

    def reset_nonces(self) -> None:
        """Forget local nonces (after a snapshot revert or a node restart)."""
        with self._lock:
            self._nonces.clear()

    def _next_nonce(self, address: str) -> int:
        with self._lock:
            if address not in self._nonces:
                self._nonces[address] = int(self._rpc(lambda: self.w3.eth.get_transaction_count(address, "pending")))
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def _forget_nonce(self, address: str) -> None:
        with self._lock:
            self._nonces.pop(address, None)

    # -- fees ----------------------------------------------------------------------------------------

    def fee_fields(self) -> dict[str, int]:
        """EIP-1559 fee fields, cached for a few seconds (local chains have a near-constant base fee)."""
        now = time.monotonic()
        if self._fees is not None and now - self._fees[0] < self.FEE_CACHE_SECONDS:
            return self._fees[1]
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas", 0) or 0)
        tip = 10**9 if self.chain.kind != "rpc" else int(self._rpc(lambda: self.w3.eth.max_priority_fee))
        fees = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        self._fees = (now, fees)
        return fees

    # -- core ------------------------------------------------------------------------------------------

    def _rpc(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}: {exc}") from None

    def build(self, account: LocalAccount, call: ContractFunction | None = None, *, to: str | None = None,
              value: int = 0, gas: int | None = None, data: bytes | str = b"") -> dict[str, Any]:
        """Build (and, when ``gas`` is None, simulate via gas estimation) a transaction dict."""
        tx: dict[str, Any] = {"from": account.address, "value": int(value), "chainId": self.chain.chain_id}
        if call is not None:
            tx["to"] = call.address
            tx["data"] = call._encode_transaction_data()
        else:
            tx["data"] = HexBytes(data)
            if to is not None:
                tx["to"] = to
        if gas is None:
            gas = self.estimate(tx)
        tx["gas"] = int(gas)
        tx.update(self.fee_fields())
        return tx

    def estimate(self, tx: dict[str, Any]) -> int:
        """Estimate gas with a 20% margin; a revert raises its typed error (nothing is sent)."""
        probe = {k: v for k, v in tx.items() if k in ("from", "to", "value", "data")}
        try:
            estimate = int(self.w3.eth.estimate_gas(probe))  # type: ignore[arg-type]
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - backend-specific revert types
            raise translate(exc) from None
        return estimate * 12 // 10 + 5_000

    def transact(self, account: LocalAccount, call: ContractFunction | None = None, *, to: str | None = None,
                 value: int = 0, gas: int | None = None, data: bytes | str = b"", wait: bool = True,
                 timeout: float = 120.0) -> TxReceipt | Sent:
        """Sign and send; with ``wait`` (default) return the receipt or raise the decoded revert."""
        tx = self.build(account, call, to=to, value=value, gas=gas, data=data)
        sent = self.send_signed(account, tx)
        if not wait:
            return sent
        return self.wait(sent, timeout=timeout)

    def send_signed(self, account: LocalAccount, tx: dict[str, Any]) -> Sent:
        """Assign a nonce, sign locally and broadcast ``tx``."""
        tx = dict(tx)
        tx["nonce"] = self._next_nonce(account.address)
        signed = account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except _CONNECTION_ERRORS as exc:
            self._forget_nonce(account.address)
            raise ChainUnavailable(f"node unreachable while sending: {type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001
            self._forget_nonce(account.address)
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from None
        return Sent("0x" + bytes(tx_hash).hex(), account.address, tx["nonce"])

    def wait(self, sent: Sent, *, timeout: float = 120.0) -> TxReceipt:
        """Wait for ``sent`` to be mined; raise the decoded revert if it failed."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(HexBytes(sent.tx_hash), timeout=timeout,
                                                               poll_latency=0.01)
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable while waiting for {sent.tx_hash}: {type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - web3's TimeExhausted
            if type(exc).__name__ == "TimeExhausted":
                raise TransactionTimeout(f"{sent.tx_hash} not mined within {timeout:.0f}s") from None
            raise
        if receipt["status"] != 1:
            raise self.explain_failure(sent.tx_hash, receipt)
        return receipt

    def explain_failure(self, tx_hash: str, receipt: TxReceipt) -> Exception:
        """Replay a failed transaction as a call at its block to recover the revert reason."""
        tx = self.w3.eth.get_transaction(HexBytes(tx_hash))
        call = {"from": tx["from"], "to": tx["to"], "value": tx["value"], "data": tx["input"], "gas": tx["gas"]}
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001
            translated = translate(exc, tx_hash=tx_hash)
            if isinstance(translated, ContractRevert):
                return translated
        if receipt["gasUsed"] >= tx["gas"]:
            return TransactionReverted(f"{tx_hash} ran out of gas ({tx['gas']})", tx_hash=tx_hash)
        return TransactionReverted(f"{tx_hash} reverted (reason not recoverable)", tx_hash=tx_hash)

    def call(self, call: ContractFunction, *, sender: str | None = None, value: int = 0,
             block: Any = "latest") -> Any:
        """Run a view or simulate a call; reverts raise their typed errors."""
        params: dict[str, Any] = {"value": value}
        if sender:
            params["from"] = sender
        try:
            return call.call(params, block_identifier=block)  # type: ignore[arg-type]
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from None

    # -- conveniences -------------------------------------------------------------------------------------

    def send_value(self, account: LocalAccount, to: str, value: int) -> TxReceipt:
        """Plain ETH transfer."""
        receipt = self.transact(account, to=to, value=value, gas=21_000)
        assert isinstance(receipt, dict) or hasattr(receipt, "status")
        return receipt  # type: ignore[return-value]

    def deploy(self, account: LocalAccount, artifact: dict[str, Any], *args: Any, value: int = 0) -> TxReceipt:
        """Deploy ``artifact`` with constructor ``args``; the receipt carries ``contractAddress``."""
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        data = factory.constructor(*args).data_in_transaction
        receipt = self.transact(account, data=data, value=value)
        return receipt  # type: ignore[return-value]

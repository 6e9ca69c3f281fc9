"""Send transactions: local signing, a nonce manager per account, a pipelined fast path, revert decoding.

Every client sends through one :class:`Transactor` per chain, so nonces stay consistent when an agent
uses several clients, and every failure surfaces as a typed :mod:`agentmarket.errors` exception.

Simple path (default)::

    receipt = chain.transactor.transact(account, contract.functions.accept(deal_id))

Fast path: skip ``eth_estimateGas`` for known operations (limit from the committed gas snapshot x a
margin), send without waiting, and await many receipts together (JSON-RPC batches over one keep-alive
HTTP session; direct in-process calls on the embedded chain)::

    handles = [tx.transact(buyer, escrow.functions.accept(i), gas_key="escrow.accept", wait=False)
               for i in deal_ids]
    receipts = tx.wait_all(handles)
    # or, one batched send for all of them:
    receipts = tx.transact_many([TxRequest(buyer, escrow.functions.accept(i), gas_key="escrow.accept")
                                 for i in deal_ids])

Per-call path (what a client does for one ``accept``): the client's pre-flight reads and the simulation
of the call go to the node in one JSON-RPC batch (``transact(..., reads=[...], check=fn)``: ``check`` sees
the decoded reads and raises before anything is signed); on a node that mines on arrival (anvil automine)
the send is ``eth_sendRawTransactionSync`` and answers with the receipt. Two round trips per transaction.

Faults: transport failures are retried with bounded backoff and then raise ``ChainUnavailable`` carrying
the in-flight handles; :meth:`Transactor.resume` recognises a transaction that already landed (by hash,
or by its nonce) instead of repeating it; a transaction that is not mined within ``replace_after``
seconds is replaced at the same nonce with both fee fields bumped by at least 12.5%.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar, overload

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.contract.contract import ContractFunction
from web3.datastructures import AttributeDict
from web3.types import TxReceipt

from . import validate
from .calldata import PreparedCall, encode_call
from .errors import (
    AgentMarketError,
    ChainUnavailable,
    ContractRevert,
    TransactionDropped,
    TransactionReverted,
    TransactionTimeout,
    decode_revert,
    revert_data_from_exception,
    translate,
)
from .gaslimits import GasTable
from .reads import Read, decode_answer
from .rpc import RetryPolicy, RPCError, Transport, transport_for
from .signing import Signer

T = TypeVar("T")
log = logging.getLogger("agentmarket.tx")

# Transport failures that mean "the node is not there", as opposed to a revert.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError)
try:  # requests is web3's HTTP transport
    import requests

    _CONNECTION_ERRORS += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
except ImportError:  # pragma: no cover
    pass

_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown", "already exists")
_NONCE_LOW = (
    "nonce too low",
    "nonce is too low",
    "noncetoolow",
    "oldnonce",
    "invalid nonce",
    "invalid transaction nonce",
)
_FEE_LOW = (
    "underpriced",
    "less than block base fee",
    "fee cap less than",
    "feecaptoolow",
    "max fee per gas less",
    "fee too low",
    "lower than the minimum",
    "priority fee",
)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return int(value)


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return to_checksum_address(address)


_INT_KEYS = frozenset(
    {
        "blockNumber",
        "cumulativeGasUsed",
        "effectiveGasPrice",
        "gasUsed",
        "status",
        "transactionIndex",
        "type",
        "logIndex",
        "blobGasUsed",
        "blobGasPrice",
    }
)
_BYTES_KEYS = frozenset({"blockHash", "transactionHash", "logsBloom", "root", "data"})
_ADDRESS_KEYS = frozenset({"from", "to", "contractAddress", "address"})


def _hexbytes(value: Any) -> HexBytes:
    """``HexBytes`` of a node's ``0x`` hex string. HexBytes' own constructor validates and normalises through
    several calls; a receipt carries ~10 such fields and that was most of formatting one."""
    if isinstance(value, str) and value[:2] in ("0x", "0X") and not len(value) % 2:
        try:
            return bytes.__new__(HexBytes, bytes.fromhex(value[2:]))
        except ValueError:
            pass  # not plain hex: HexBytes decides (and raises its own error)
    return HexBytes(value)


def _address(value: Any) -> Any:
    return _checksum(value) if isinstance(value, str) and len(value) == 42 else value


def _formatted(raw: Any, formatters: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        formatter = formatters.get(key)
        out[key] = value if formatter is None or value is None else formatter(value)
    return out


def _logs(value: Any) -> list[AttributeDict[str, Any]]:
    return [AttributeDict(_formatted(log, _LOG_FORMAT)) for log in value]


# key -> formatter of a JSON-RPC receipt (web3.py's receipt_formatter: ints, HexBytes, checksummed addresses)
_RECEIPT_FORMAT: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_INT_KEYS, _int),
    **dict.fromkeys(_BYTES_KEYS, _hexbytes),
    **dict.fromkeys(_ADDRESS_KEYS, _address),
    "topics": lambda topics: [_hexbytes(t) for t in topics],
    "logs": _logs,
    "removed": bool,
}
_LOG_FORMAT = {k: f for k, f in _RECEIPT_FORMAT.items() if k != "type"}  # a log's "type" stays as sent


def _format_receipt(raw: Any) -> TxReceipt:
    """Turn a JSON-RPC receipt into the same ``AttributeDict`` web3.py returns (ints, HexBytes,
    checksummed addresses); a test compares it with web3.py's own receipt formatter."""
    if isinstance(raw, AttributeDict):
        return raw  # type: ignore[return-value]
    return AttributeDict(_formatted(raw, _RECEIPT_FORMAT))  # type: ignore[return-value]


def _call_params(tx: dict[str, Any]) -> dict[str, Any]:
    """The ``eth_call`` object of a built transaction (JSON-RPC shape)."""
    params: dict[str, Any] = {"from": tx["from"], "value": hex(int(tx.get("value", 0)))}
    if tx.get("to") is not None:
        params["to"] = tx["to"]
    data = tx.get("data", b"")
    params["data"] = data if isinstance(data, str) else "0x" + bytes(data).hex()
    if tx.get("gas") is not None:
        params["gas"] = hex(int(tx["gas"]))
    return params


@dataclass(frozen=True)
class TxRequest:
    """One transaction to send: a contract call (``call``) or raw ``to``/``data``/``value``.

    ``gas`` fixes the limit; ``gas_key`` names a gas-snapshot operation (no estimation; ``gas_count``
    repeats a per-item figure for batches); neither means estimate (which also simulates: a call that
    would revert raises before anything is sent). ``simulate`` runs the call once (``eth_call`` on the
    pending block) before signing when no estimate did, so a revert raises its typed error unsent.
    ``key`` is an idempotency key: sending the same key again resumes the first transaction instead.
    """

    account: LocalAccount
    call: ContractFunction | PreparedCall | None = None
    to: str | None = None
    value: int = 0
    gas: int | None = None
    gas_key: str | None = None
    data: bytes | str = b""
    key: str | None = None
    simulate: bool = False
    gas_count: int = 1

    def __repr__(self) -> str:  # the account object holds the key: show its address only
        target = self.call.fn_name if self.call is not None else (self.to or "create")
        return (
            f"TxRequest(from={self.account.address}, to={target}, value={self.value}, gas_key={self.gas_key})"
        )


@dataclass(eq=False)
class Sent:
    """A transaction that was sent; ``receipt`` is filled once it was mined.

    ``hashes`` holds every hash broadcast for this nonce (the original and its fee-bumped replacements);
    ``tx_hash`` is the latest one, or the one that was mined.
    """

    tx_hash: str
    sender: str
    nonce: int
    receipt: TxReceipt | None = None
    gas: int = 0
    max_fee: int = 0
    tip: int = 0
    key: str | None = None
    simulated: bool = False
    gas_key: str | None = None  # the gas-snapshot operation the limit came from (None: given or estimated)
    hashes: list[str] = field(default_factory=list)
    error: BaseException | None = field(default=None, repr=False)
    sent_at: float = field(default=0.0, repr=False)
    tx: dict[str, Any] = field(default_factory=dict, repr=False)
    raw: bytes = field(default=b"", repr=False)
    undo: Callable[[], None] | None = field(default=None, repr=False)  # the signing policy's give-back
    reported: bool = field(default=False, repr=False)  # receipt handed to the sender's policy already

    @property
    def mined(self) -> bool:
        return self.receipt is not None

    @property
    def replacements(self) -> int:
        return max(0, len(self.hashes) - 1)


class SigningPolicy(Protocol):
    """What an account's owner allows it to sign, checked by the :class:`Transactor` before signing.

    ``authorise`` sees the built transaction (``from``, ``to``, ``value``, ``data``, ``gas``) and raises to
    refuse it (nothing is signed, no nonce is taken); it may return a callable that gives back what it
    recorded, which the Transactor calls if the transaction is not sent or fails on chain.
    ``settled`` is told every receipt of the account's transactions (mined, success or not).
    """

    def authorise(self, tx: dict[str, Any]) -> Callable[[], None] | None: ...

    def settled(self, receipt: TxReceipt) -> None: ...


class Transactor:
    """Signs locally and sends transactions for the accounts of one chain.

    Nonces are tracked locally per account (thread-safe) and re-read from the chain after any error, so a
    failed send never leaves a gap. Gas is estimated unless given (``gas=``) or known (``gas_key=``);
    estimation also simulates the call: a call that would revert raises its typed error before anything
    is sent. A transaction sent without simulation that reverts on chain is decoded by replaying it.
    """

    FEE_CACHE_SECONDS = 5.0
    FEE_BUMP = 1.125  # replacement fee factor (nodes require >= 1.10 on both fee fields)
    REPLACE_AFTER = 30.0  # seconds without a receipt before a fee-bumped replacement
    MAX_REPLACEMENTS = 5
    POLL_INITIAL, POLL_MAX = 0.002, 0.05

    def __init__(
        self,
        chain: Any,
        *,
        policy: RetryPolicy | None = None,
        gas_table: GasTable | None = None,
        replace_after: float | None = None,
    ):
        self.chain = chain
        self.w3 = chain.w3
        self.policy = policy or RetryPolicy()
        self.gas_table = gas_table or GasTable()
        self.replace_after = self.REPLACE_AFTER if replace_after is None else replace_after
        self._nonces: dict[str, int] = {}
        self._lock = threading.RLock()
        self._fees: tuple[float, dict[str, int]] | None = None
        self._chain_id: int | None = None
        self._signers: dict[str, Signer] = {}
        self._journal: dict[str, Sent] = {}
        self._transport: Transport | None = None
        self._policies: dict[str, SigningPolicy] = {}
        self._instant: bool | None = None  # node answers a send with its receipt (anvil automine)?
        #: how waiting for receipts pauses between polls (agentmarket.aio awaits instead of blocking)
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"Transactor(chain={self.chain.kind}, accounts_seen={len(self._signers)})"

    # -- plumbing ------------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """Raw JSON-RPC transport of the fast path (batched HTTP, or direct in-process)."""
        if self._transport is None:
            self._transport = transport_for(self.chain, self.policy)
        return self._transport

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.chain.chain_id)
        return self._chain_id

    def set_policy(self, address: str, policy: SigningPolicy | None) -> None:
        """Check every transaction from ``address`` against ``policy`` before it is signed (None: stop)."""
        address = validate.address(address, "address")
        with self._lock:
            if policy is None:
                self._policies.pop(address, None)
            else:
                self._policies[address] = policy

    def signing_policy(self, address: str) -> SigningPolicy | None:
        """The signing policy of ``address`` (None when it has none)."""
        return self._policies.get(_checksum(address))

    def _authorise(
        self, items: Sequence[tuple[LocalAccount, dict[str, Any], str | None]]
    ) -> list[Callable[[], None] | None]:
        """Run each sender's signing policy over its transaction; all or nothing (a refusal gives back
        what the earlier items of the batch recorded)."""
        undos: list[Callable[[], None] | None] = []
        try:
            for account, tx, _ in items:
                policy = self._policies.get(account.address)
                undos.append(policy.authorise(tx) if policy is not None else None)
        except BaseException:
            for undo in undos:
                if undo is not None:
                    undo()
            raise
        return undos

    def _signer(self, account: LocalAccount) -> Signer:
        signer = self._signers.get(account.address)
        if signer is None:
            signer = self._signers[account.address] = Signer(account)
        return signer

    def _rpc(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}") from None

    def _request(self, method: str, params: Sequence[Any] = ()) -> Any:
        result = self.transport.request(method, params)
        return result

    def _unavailable(self, exc: ChainUnavailable, pending: Iterable[Sent]) -> ChainUnavailable:
        """Forget cached chain state (the node may come back as another chain) and attach the handles."""
        self.reset_nonces()
        self._fees = None
        self._instant = None
        pending = [s for s in pending if s.receipt is None]
        return ChainUnavailable(str(exc), pending=pending)

    # -- nonces ------------------------------------------------------------------------------------

    def reset_nonces(self) -> None:
        """Forget local nonces (after a snapshot revert or a node restart)."""
        with self._lock:
            self._nonces.clear()

    def _chain_nonce(self, address: str, block: str = "pending") -> int:
        return _int(self._request("eth_getTransactionCount", [address, block]))

    def _prefetch_nonces(self, addresses: Sequence[str]) -> None:
        """Read the pending nonces of many new senders in one JSON-RPC batch (one request each was most
        of the first round's send time with hundreds of fresh agents). Failed answers are left to the
        one-by-one path of :meth:`_reserve_nonces`."""
        if len(addresses) < 2:
            return
        try:
            answers = self.transport.batch(
                [("eth_getTransactionCount", [address, "pending"]) for address in addresses]
            )
        except ChainUnavailable:
            return  # the one-by-one path raises it where the caller already handles it
        with self._lock:
            for address, answer in zip(addresses, answers, strict=True):
                if not isinstance(answer, BaseException):
                    self._nonces.setdefault(address, _int(answer))

    def _reserve_nonces(self, address: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive nonces for ``address``; returns the first."""
        if address not in self._nonces:
            # read outside the lock: no lock is held across I/O (on an event loop several calls share one
            # thread, where a held lock would not exclude them); the first answer stored wins
            fetched = self._chain_nonce(address)
            with self._lock:
                self._nonces.setdefault(address, fetched)
        with self._lock:
            first = self._nonces[address]
            self._nonces[address] = first + count
            return first

    def _next_nonce(self, address: str) -> int:
        return self._reserve_nonces(address, 1)

    def _forget_nonce(self, address: str) -> None:
        with self._lock:
            self._nonces.pop(address, None)

    def _release_nonce(self, address: str, nonce: int) -> bool:
        """Give back ``nonce`` if it was the last one reserved; else forget (resync). True if given back."""
        with self._lock:
            if self._nonces.get(address) == nonce + 1:
                self._nonces[address] = nonce
                return True
            self._nonces.pop(address, None)
            return False

    # -- fees ----------------------------------------------------------------------------------------

    def fee_fields(self, *, refresh: bool = False) -> dict[str, int]:
        """EIP-1559 fee fields, cached for a few seconds (local chains have a near-constant base fee)."""
        now = time.monotonic()
        fees = self._fees
        if not refresh and fees is not None and now - fees[0] < self.FEE_CACHE_SECONDS:
            return fees[1]
        block = self._request("eth_getBlockByNumber", ["latest", False]) or {}
        base = _int(block.get("baseFeePerGas", 0) or 0)
        tip = 10**9 if self.chain.kind != "rpc" else _int(self._request("eth_maxPriorityFeePerGas", []))
        fields = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        self._fees = (now, fields)
        return fields

    # -- building ------------------------------------------------------------------------------------------

    def gas_limit(self, key: str, count: int = 1) -> int | None:
        """The gas limit for snapshot operation ``key`` (``count`` times its figure, for per-item batch
        figures); None when unknown: then the call is estimated."""
        return self.gas_table.limit(key, count)

    def build(
        self,
        account: LocalAccount,
        call: ContractFunction | PreparedCall | None = None,
        *,
        to: str | None = None,
        value: int = 0,
        gas: int | None = None,
        data: bytes | str = b"",
        gas_key: str | None = None,
        simulate: bool = False,
        gas_count: int = 1,
        reads: Sequence[Read] = (),
        check: Callable[[list[Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Build a transaction dict (no nonce). Without ``gas`` or a known ``gas_key`` it is estimated,
        which simulates the call: a revert raises its typed error and nothing is sent. ``simulate`` runs
        that simulation also when the limit is known (one ``eth_call``, no estimation).

        ``reads`` are the caller's pre-flight reads: they go to the node in the same JSON-RPC batch as the
        simulation, and ``check`` gets their decoded answers (in order) before the simulation's outcome is
        looked at, so a pre-flight error (raised by ``check``) wins over the contract's revert."""
        value = validate.amount(value, "value")
        if gas is not None:
            gas = validate.integer(gas, "gas", minimum=21_000, maximum=2**63 - 1)
        if to is not None:
            to = validate.address(to, "to")
        tx: dict[str, Any] = {"from": account.address, "value": value, "chainId": self.chain_id}
        if call is not None:
            tx["to"] = call.address
            tx["data"] = encode_call(call)
        else:
            tx["data"] = HexBytes(data)
            if to is not None:
                tx["to"] = to
        if gas_key is not None:
            tx["_gas_key"] = gas_key  # for the logs; stripped before signing
        if gas is None and gas_key is not None:
            gas = self.gas_limit(gas_key, gas_count)
            if gas is None:
                log.debug("gas key %s not in the snapshot: estimating", gas_key)
        if gas is None:
            if reads or check is not None:
                self._checked(None, reads, check)
            gas = self.estimate(tx)
            tx["_simulated"] = True
        elif simulate or reads or check is not None:
            self._checked(tx | {"gas": int(gas)} if simulate else None, reads, check)
            tx["_simulated"] = simulate
        tx["gas"] = int(gas)
        tx.update(self.fee_fields())
        return tx

    #: gas limit of a simulated call on the embedded chain (only the gas used is charged)
    EMBEDDED_GAS_LIMIT = 1_500_000

    def estimate(self, tx: dict[str, Any]) -> int:
        """Estimate gas with a 20% margin; a revert raises its typed error (nothing is sent).

        On the embedded chain a call is simulated once and given a fixed limit instead: py-evm's
        estimate is a binary search of ~10-15 executions, and only the gas used is charged anyway.
        """
        probe = {k: v for k, v in tx.items() if k in ("from", "to", "value", "data")}
        try:
            if self.chain.kind == "embedded" and probe.get("to"):
                self.w3.eth.call(probe)
                return self.EMBEDDED_GAS_LIMIT
            estimate = int(self.w3.eth.estimate_gas(probe))
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}") from None
        except Exception as exc:
            raise translate(exc) from None
        return estimate * 12 // 10 + 5_000

    def simulate(self, tx: dict[str, Any]) -> None:
        """Run ``tx`` as an ``eth_call`` on the pending block; a revert raises its typed error. Its gas
        limit goes along: without one a node assumes the block's, which a modest balance cannot cover."""
        self._checked(tx, (), None)

    def read(self, reads: Sequence[Read]) -> list[Any]:
        """Run ``reads`` in one JSON-RPC batch; their decoded answers in order (a revert raises its typed
        error)."""
        answers = self.transport.batch([(r.method, r.params) for r in reads])
        return [decode_answer(r, a) for r, a in zip(reads, answers, strict=True)]

    def _checked(
        self, tx: dict[str, Any] | None, reads: Sequence[Read], check: Callable[[list[Any]], None] | None
    ) -> None:
        """One JSON-RPC batch: ``reads`` and (``tx`` given) its simulation on the pending block. ``check``
        sees the decoded reads first; then a simulated revert raises its typed error."""
        calls: list[tuple[str, Sequence[Any]]] = [(r.method, r.params) for r in reads]
        if tx is not None:
            calls.append(("eth_call", [_call_params(tx), "pending"]))
        answers = self.transport.batch(calls)
        values = [decode_answer(r, a) for r, a in zip(reads, answers, strict=False)]
        if check is not None:
            check(values)
        if tx is not None and isinstance(answers[-1], RPCError):
            error = answers[-1]
            original = getattr(error, "original", None)
            if original is not None:  # in process: the backend's own exception
                raise translate(original) from None
            # RPCError is itself an AgentMarketError, which translate() passes through: decode its data
            data = revert_data_from_exception(error)
            raise (error if data is None else decode_revert(data)) from None

    def _instant_receipts(self) -> bool:
        """Whether the node mines each transaction as it arrives and can answer a send with its receipt
        (``eth_sendRawTransactionSync``, EIP-7966): anvil with automine. Asked once per connection."""
        if self._instant is None:
            if self.chain.kind == "embedded":
                self._instant = False
            else:
                try:
                    version, automine = self.transport.batch(
                        [("web3_clientVersion", []), ("anvil_getAutomine", [])]
                    )
                except ChainUnavailable:
                    return False
                self._instant = (
                    isinstance(version, str) and version.lower().startswith("anvil") and automine is True
                )
        return self._instant

    def _build_request(
        self, request: TxRequest | dict[str, Any] | tuple[Any, ...]
    ) -> tuple[TxRequest, dict[str, Any]]:
        if isinstance(request, dict):
            request = TxRequest(**request)
        elif isinstance(request, tuple):
            request = TxRequest(*request)
        tx = self.build(
            request.account,
            request.call,
            to=request.to,
            value=request.value,
            gas=request.gas,
            data=request.data,
            gas_key=request.gas_key,
            simulate=request.simulate,
            gas_count=request.gas_count,
        )
        return request, tx

    # -- sending -------------------------------------------------------------------------------------------

    @overload
    def transact(
        self,
        account: LocalAccount,
        call: ContractFunction | None = None,
        *,
        to: str | None = None,
        value: int = 0,
        gas: int | None = None,
        data: bytes | str = b"",
        wait: Literal[True] = ...,
        timeout: float = 120.0,
        gas_key: str | None = None,
        key: str | None = None,
        replace_after: float | None = None,
        simulate: bool = False,
        gas_count: int = 1,
        raise_on_revert: bool = True,
    ) -> TxReceipt: ...

    @overload
    def transact(
        self,
        account: LocalAccount,
        call: ContractFunction | None = None,
        *,
        to: str | None = None,
        value: int = 0,
        gas: int | None = None,
        data: bytes | str = b"",
        wait: Literal[False],
        timeout: float = 120.0,
        gas_key: str | None = None,
        key: str | None = None,
        replace_after: float | None = None,
        simulate: bool = False,
        gas_count: int = 1,
        raise_on_revert: bool = True,
    ) -> Sent: ...

    @overload
    def transact(
        self,
        account: LocalAccount,
        call: ContractFunction | None = None,
        *,
        to: str | None = None,
        value: int = 0,
        gas: int | None = None,
        data: bytes | str = b"",
        wait: bool = ...,
        timeout: float = 120.0,
        gas_key: str | None = None,
        key: str | None = None,
        replace_after: float | None = None,
        simulate: bool = False,
        gas_count: int = 1,
        raise_on_revert: bool = True,
    ) -> TxReceipt | Sent: ...

    def transact(
        self,
        account: LocalAccount,
        call: ContractFunction | PreparedCall | None = None,
        *,
        to: str | None = None,
        value: int = 0,
        gas: int | None = None,
        data: bytes | str = b"",
        wait: bool = True,
        timeout: float = 120.0,
        gas_key: str | None = None,
        key: str | None = None,
        replace_after: float | None = None,
        simulate: bool = False,
        gas_count: int = 1,
        raise_on_revert: bool = True,
        reads: Sequence[Read] = (),
        check: Callable[[list[Any]], None] | None = None,
    ) -> TxReceipt | Sent:
        """Sign and send; with ``wait`` (default) return the receipt or raise the decoded revert.

        ``wait=False`` returns a :class:`Sent` handle for :meth:`wait`/:meth:`wait_all`. ``gas_key`` takes
        the gas limit from the snapshot (no estimation, no simulation). ``key`` makes the action
        idempotent: if a transaction was already sent under that key it is resumed, not repeated.
        ``raise_on_revert=False`` returns a mined failure's status-0 receipt instead of raising.
        ``reads``/``check``: pre-flight reads batched with the simulation (see :meth:`build`); whatever
        ``check`` raises is raised with nothing signed or sent.

        On a node that mines on arrival (anvil automine) a waited-for transaction is sent with
        ``eth_sendRawTransactionSync``: the receipt comes back with the send, one round trip.
        """
        if key is not None and key in self._journal:
            return self.resume(self._journal[key], wait=wait, timeout=timeout, replace_after=replace_after)
        tx = self.build(
            account,
            call,
            to=to,
            value=value,
            gas=gas,
            data=data,
            gas_key=gas_key,
            simulate=simulate,
            gas_count=gas_count,
            reads=reads,
            check=check,
        )
        sent = self._send_batch([(account, tx, key)], instant=wait and self._instant_receipts())[0]
        if sent.error is not None:
            raise sent.error
        if not wait:
            return sent
        return self.wait(sent, timeout=timeout, replace_after=replace_after, raise_on_revert=raise_on_revert)

    def transact_many(
        self,
        requests: Sequence[TxRequest | dict[str, Any] | tuple[Any, ...]],
        *,
        wait: bool = True,
        timeout: float = 120.0,
        return_exceptions: bool = False,
        replace_after: float | None = None,
    ) -> list[Any]:
        """Build, sign and send many transactions in one batch; then (``wait``) await all receipts.

        Returns receipts (or :class:`Sent` handles with ``wait=False``), in request order. A request that
        fails raises, unless ``return_exceptions``: then its slot holds the exception.
        """
        items: list[tuple[LocalAccount, dict[str, Any], str | None]] = []
        resumed: dict[int, Sent] = {}
        for index, request in enumerate(requests):
            req, tx = self._build_request(request) if not self._journaled(request) else (None, None)
            if req is None:
                resumed[index] = self._journal[self._request_key(request)]  # type: ignore[index]
                continue
            items.append((req.account, tx, req.key))  # type: ignore[arg-type]
        fresh = iter(self._send_batch(items))
        handles = [resumed[i] if i in resumed else next(fresh) for i in range(len(requests))]
        for handle in resumed.values():
            if handle.receipt is None:
                self._rebroadcast_or_recognise(handle)
        if not wait:
            if not return_exceptions:
                for handle in handles:
                    if handle.error is not None:
                        raise handle.error
            return handles
        return self.wait_all(
            handles, timeout=timeout, return_exceptions=return_exceptions, replace_after=replace_after
        )

    @staticmethod
    def _request_key(request: Any) -> str | None:
        if isinstance(request, TxRequest):
            return request.key
        if isinstance(request, dict):
            return request.get("key")
        return None

    def _journaled(self, request: Any) -> bool:
        key = self._request_key(request)
        return key is not None and key in self._journal

    def send_signed(self, account: LocalAccount, tx: dict[str, Any]) -> Sent:
        """Assign a nonce, sign locally and broadcast ``tx`` (built by :meth:`build`)."""
        sent = self._send_batch([(account, dict(tx), None)])[0]
        if sent.error is not None:
            raise sent.error
        return sent

    def _sign(self, account: LocalAccount, tx: dict[str, Any]) -> tuple[bytes, str]:
        clean = {k: v for k, v in tx.items() if k != "from" and not k.startswith("_")}
        return self._signer(account).sign(clean)

    def _send_batch(
        self, items: Sequence[tuple[LocalAccount, dict[str, Any], str | None]], *, instant: bool = False
    ) -> list[Sent]:
        """Assign nonces (consecutive per account), sign, send in one JSON-RPC batch, sort out errors.
        ``instant``: send with ``eth_sendRawTransactionSync`` (receipts come back with the send)."""
        if not items:
            return []
        undos = self._authorise(items)  # before any nonce is reserved: a refusal leaves no gap
        lock = getattr(self.chain, "backend_lock", None)
        if lock is None:
            return self._reserve_sign_send(items, undos, instant)
        with lock:  # no mempool (embedded): nonces must reach the node in order
            return self._reserve_sign_send(items, undos, instant)

    def _reserve_sign_send(
        self,
        items: Sequence[tuple[LocalAccount, dict[str, Any], str | None]],
        undos: list[Callable[[], None] | None],
        instant: bool = False,
    ) -> list[Sent]:
        counts: dict[str, int] = {}
        for account, _, _ in items:
            counts[account.address] = counts.get(account.address, 0) + 1
        self._prefetch_nonces([a for a in counts if a not in self._nonces])
        firsts = {address: self._reserve_nonces(address, n) for address, n in counts.items()}
        offsets = dict.fromkeys(counts, 0)
        sents: list[Sent] = []
        accounts: dict[str, LocalAccount] = {}
        now = time.monotonic()
        # All transactions are signed first and go to the node in one batch (the transport splits it at
        # its max_batch). Sending chunks while signing the next one looked like overlap, but a node that
        # mines on arrival (anvil automine) then mines a block per chunk, and more often while it is still
        # reading one: ~3x the blocks and ~3x the node's CPU per transaction measured on anvil, far more
        # than the signing time the overlap hid.
        for account, tx, key in items:
            address = account.address
            accounts[address] = account
            nonce = firsts[address] + offsets[address]
            offsets[address] += 1
            simulated = bool(tx.get("_simulated", False))
            gas_key = tx.get("_gas_key")
            tx = {k: v for k, v in tx.items() if not k.startswith("_")} | {"nonce": nonce}
            try:
                raw, tx_hash = self._sign(account, tx)
            except BaseException:
                # Nothing of this batch was sent: give the reserved nonces back (re-read from the chain on
                # next use), so a transaction that cannot be signed never leaves a gap.
                for reserved in counts:
                    self._forget_nonce(reserved)
                for undo in undos:
                    if undo is not None:
                        undo()
                raise
            sents.append(
                Sent(
                    tx_hash,
                    address,
                    nonce,
                    gas=int(tx["gas"]),
                    max_fee=int(tx["maxFeePerGas"]),
                    tip=int(tx["maxPriorityFeePerGas"]),
                    key=key,
                    simulated=simulated,
                    gas_key=gas_key,
                    hashes=[tx_hash],
                    sent_at=now,
                    tx=tx,
                    raw=raw,
                    undo=undos[len(sents)],
                )
            )
        try:
            results = self._broadcast(sents, instant=instant)
        except ChainUnavailable as exc:
            for sent in sents:
                if sent.key is not None:
                    self._journal[sent.key] = sent
            raise self._unavailable(exc, sents) from None
        failed_by_account: dict[str, list[Sent]] = {}
        for sent, result in zip(sents, results, strict=True):
            if instant:
                result = self._instant_outcome(sent, result)
            if isinstance(result, RPCError):
                error = self._handle_send_error(accounts[sent.sender], sent, result)
                if error is not None:
                    sent.error = error
                    failed_by_account.setdefault(sent.sender, []).append(sent)
            if sent.error is None:
                if sent.key is not None:
                    self._journal[sent.key] = sent
                log.debug(
                    "sent %s from %s nonce %d gas %d (key %s)",
                    sent.tx_hash,
                    sent.sender,
                    sent.nonce,
                    sent.gas,
                    sent.gas_key,
                )
        for sent in sents:
            if sent.error is not None and sent.undo is not None:
                sent.undo()
                sent.undo = None
        for sender, failed in failed_by_account.items():
            self._repair_gaps(accounts[sender], failed, [s for s in sents if s.sender == sender])
        return sents

    def _broadcast(self, sents: Sequence[Sent], *, instant: bool = False) -> list[Any]:
        """One JSON-RPC batch of ``eth_sendRawTransaction`` for ``sents``: tx hashes or RPCErrors, in order
        (``instant``: ``eth_sendRawTransactionSync``, whose answers are receipts)."""
        method = "eth_sendRawTransactionSync" if instant else "eth_sendRawTransaction"
        return self.transport.batch([(method, ["0x" + s.raw.hex()]) for s in sents])

    def _instant_outcome(self, sent: Sent, answer: Any) -> Any:
        """Sort out the answer to an ``eth_sendRawTransactionSync``: a receipt (kept on ``sent``), an error
        that means "sent, not mined yet" (the receipt is then polled), a node without the method (sent
        again the ordinary way, and not asked again), or a rejection (returned for the usual handling)."""
        if isinstance(answer, RPCError):
            message = answer.message.lower()
            if answer.code == -32601 or "method not found" in message or "not supported" in message:
                self._instant = False
                try:
                    return self.transport.request("eth_sendRawTransaction", ["0x" + sent.raw.hex()])
                except RPCError as error:
                    return error
            if answer.code == 4 or "timeout" in message or "timed out" in message:
                return sent.tx_hash  # EIP-7966: accepted, not mined within the node's wait
            return answer
        if (
            isinstance(answer, dict)
            and str(answer.get("transactionHash", "")).lower() == sent.tx_hash.lower()
        ):
            sent.receipt = _format_receipt(answer)
        return sent.tx_hash

    def _handle_send_error(self, account: LocalAccount, sent: Sent, error: RPCError) -> BaseException | None:
        """Recover from a rejected send where possible; return the error to surface otherwise."""
        message = error.message.lower()
        for attempt in range(3):
            if any(marker in message for marker in _KNOWN):
                return None  # the node already has exactly this transaction
            if any(marker in message for marker in _NONCE_LOW):
                if self._known_hash(sent.tx_hash):
                    return None  # our own transaction landed earlier (a retried send)
                # someone else used the nonce (another process, a restarted node): resync and re-sign
                self._forget_nonce(sent.sender)
                sent.nonce = self._next_nonce(sent.sender)
            elif any(marker in message for marker in _FEE_LOW) and attempt == 0:
                fees = self.fee_fields(refresh=True)
                sent.tx["maxFeePerGas"] = max(fees["maxFeePerGas"], math.ceil(sent.max_fee * self.FEE_BUMP))
                sent.tx["maxPriorityFeePerGas"] = max(fees["maxPriorityFeePerGas"], sent.tip)
            else:
                break
            sent.tx["nonce"] = sent.nonce
            sent.raw, sent.tx_hash = self._sign(account, sent.tx)
            sent.hashes = [sent.tx_hash]
            sent.max_fee, sent.tip = int(sent.tx["maxFeePerGas"]), int(sent.tx["maxPriorityFeePerGas"])
            try:
                answer = self.transport.request("eth_sendRawTransaction", ["0x" + sent.raw.hex()])
            except RPCError as again:
                error, message = again, again.message.lower()
                continue
            del answer
            return None
        return self._translate_rpc_error(error, sent)

    def _translate_rpc_error(self, error: RPCError, sent: Sent) -> BaseException:
        if "out of gas" in error.message.lower():  # eth-tester executes at send time and says so
            return TransactionReverted(
                f"{sent.tx_hash} ran out of gas ({sent.gas}): {error.message}", tx_hash=sent.tx_hash
            )
        original = getattr(error, "original", None)
        if original is not None:
            translated = translate(original, tx_hash=sent.tx_hash)
            if translated is not original:
                return translated
        if isinstance(error.data, str) and error.data.startswith("0x"):
            return decode_revert(bytes.fromhex(error.data[2:]), tx_hash=sent.tx_hash)
        return TransactionReverted(
            f"node rejected {sent.tx_hash} (nonce {sent.nonce}): {error.message}", tx_hash=sent.tx_hash
        )

    def _repair_gaps(self, account: LocalAccount, failed: list[Sent], all_sent: list[Sent]) -> None:
        """A rejected nonce below accepted ones would stall them: fill each such gap with a 0-value
        self-transfer; otherwise give the nonce back to the local manager."""
        accepted = [s.nonce for s in all_sent if s.error is None]
        for sent in sorted(failed, key=lambda s: -s.nonce):
            if not any(n > sent.nonce for n in accepted):
                self._release_nonce(account.address, sent.nonce)
                continue
            filler = {
                "to": account.address,
                "value": 0,
                "data": b"",
                "gas": 21_000,
                "chainId": self.chain_id,
                "nonce": sent.nonce,
                **self.fee_fields(),
            }
            raw, tx_hash = self._sign(account, filler)
            try:
                self.transport.request("eth_sendRawTransaction", ["0x" + raw.hex()])
                log.info("filled nonce gap %d of %s with %s", sent.nonce, account.address, tx_hash)
            except (RPCError, ChainUnavailable):
                self._forget_nonce(account.address)

    def _known_hash(self, tx_hash: str) -> bool:
        try:
            return self.transport.request("eth_getTransactionByHash", [tx_hash]) is not None
        except RPCError:
            return False

    # -- waiting -----------------------------------------------------------------------------------------

    def wait(
        self,
        sent: Sent,
        *,
        timeout: float = 120.0,
        replace_after: float | None = None,
        raise_on_revert: bool = True,
    ) -> TxReceipt:
        """Wait for ``sent`` to be mined; raise the decoded revert if it failed (unless ``raise_on_revert``
        is False: then the status-0 receipt is returned as mined)."""
        return self.wait_all(  # type: ignore[no-any-return]
            [sent], timeout=timeout, replace_after=replace_after, raise_on_revert=raise_on_revert
        )[0]

    def wait_all(
        self,
        handles: Sequence[Sent],
        *,
        timeout: float = 120.0,
        return_exceptions: bool = False,
        replace_after: float | None = None,
        raise_on_revert: bool = True,
    ) -> list[Any]:
        """Await the receipts of many handles, polling them together in JSON-RPC batches.

        A handle without a receipt after ``replace_after`` seconds (default :attr:`REPLACE_AFTER`) is
        replaced with bumped fees, up to :attr:`MAX_REPLACEMENTS` times. A failed transaction raises its
        decoded revert (or, with ``return_exceptions``, takes that slot of the returned list); with
        ``raise_on_revert=False`` its status-0 receipt takes the slot instead, not replayed for a reason
        (the caller predicted the failure, or decodes it itself).
        """
        replace_after = self.replace_after if replace_after is None else replace_after
        deadline = time.monotonic() + timeout
        delay = self.POLL_INITIAL
        outcome: dict[int, Any] = {}
        for index, handle in enumerate(handles):
            if handle.error is not None:
                outcome[index] = handle.error
            elif handle.receipt is not None:
                outcome[index] = handle.receipt
        while True:
            pending = [(i, h) for i, h in enumerate(handles) if i not in outcome]
            if not pending:
                break
            calls = [("eth_getTransactionReceipt", [tx_hash]) for _, h in pending for tx_hash in h.hashes]
            try:
                answers = iter(self.transport.batch(calls))
            except ChainUnavailable as exc:
                raise self._unavailable(exc, [h for _, h in pending]) from None
            for index, handle in pending:
                for tx_hash in list(handle.hashes):
                    answer = next(answers)
                    if answer is None or isinstance(answer, RPCError) or index in outcome:
                        continue
                    receipt = _format_receipt(answer)
                    handle.receipt, handle.tx_hash = receipt, tx_hash
                    outcome[index] = receipt
            now = time.monotonic()
            still = [(i, h) for i, h in pending if i not in outcome]
            if not still:
                break
            if now > deadline:
                raise TransactionTimeout(
                    f"{len(still)} transaction(s) not mined within {timeout:.0f}s (first: {still[0][1].tx_hash})"
                )
            if replace_after and replace_after > 0:
                for index, handle in still:
                    if now - handle.sent_at >= replace_after and handle.replacements < self.MAX_REPLACEMENTS:
                        try:
                            self.replace(handle)
                        except TransactionDropped as exc:
                            outcome[index] = exc
                        except ChainUnavailable as exc:
                            raise self._unavailable(exc, [h for _, h in still]) from None
            # Back off only while nothing lands: a poll that brought receipts means the node is mining
            # this batch now, and the rest follow within milliseconds (growing the delay there overshot the
            # last receipts of a batch by tens of ms per phase on anvil).
            if len(still) < len(pending):
                delay = self.POLL_INITIAL
            self.sleep(delay)
            delay = min(self.POLL_MAX, delay * 1.5)
        results: list[Any] = []
        first_error: BaseException | None = None
        for index, handle in enumerate(handles):
            value = outcome[index]
            if not isinstance(value, BaseException) and not handle.reported:
                handle.reported = True
                policy = self._policies.get(handle.sender)
                if policy is not None:
                    policy.settled(value)
                log.debug(
                    "mined %s from %s (key %s): status %s gas %s",
                    handle.tx_hash,
                    handle.sender,
                    handle.gas_key,
                    value["status"],
                    value.get("gasUsed"),
                )
            if not isinstance(value, BaseException) and value["status"] != 1:
                if handle.undo is not None:
                    handle.undo()
                    handle.undo = None
                if not raise_on_revert:
                    results.append(value)
                    continue
                value = self.explain_failure(handle.tx_hash, value)
                handle.error = value
            if isinstance(value, BaseException) and first_error is None:
                first_error = value
            results.append(value)
        if first_error is not None and not return_exceptions:
            raise first_error
        return results

    # -- replacement and recovery ----------------------------------------------------------------------------

    def replace(self, sent: Sent, *, fee_bump: float | None = None) -> Sent:
        """Re-send ``sent`` at the same nonce with both fee fields raised by >= ``fee_bump`` (default 12.5%)
        and at least the current market fees. The old hash stays tracked: whichever is mined wins."""
        factor = max(1.10, fee_bump or self.FEE_BUMP)
        fees = self.fee_fields(refresh=True)
        account = self._signers.get(sent.sender)
        if account is None:
            raise AgentMarketError(f"no signer known for {sent.sender}: cannot replace {sent.tx_hash}")
        tip = max(math.ceil(sent.tip * factor), fees["maxPriorityFeePerGas"])
        max_fee = max(math.ceil(sent.max_fee * factor), fees["maxFeePerGas"], tip)
        for _ in range(3):
            tx = dict(sent.tx) | {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip, "nonce": sent.nonce}
            raw, tx_hash = account.sign(tx)
            try:
                self.transport.request("eth_sendRawTransaction", ["0x" + raw.hex()])
            except RPCError as error:
                message = error.message.lower()
                if any(marker in message for marker in _NONCE_LOW):
                    if self._find_receipt(sent) is not None:
                        return sent  # the original was mined meanwhile
                    raise TransactionDropped(
                        f"nonce {sent.nonce} of {sent.sender} was used by another transaction; "
                        f"{sent.tx_hash} will never be mined",
                        tx_hash=sent.tx_hash,
                    ) from None
                if any(marker in message for marker in _FEE_LOW):
                    tip, max_fee = math.ceil(tip * factor), math.ceil(max_fee * factor)
                    continue
                raise self._translate_rpc_error(error, sent) from None
            log.info(
                "replaced %s by %s (nonce %d, maxFee %d -> %d, tip %d -> %d)",
                sent.tx_hash,
                tx_hash,
                sent.nonce,
                sent.max_fee,
                max_fee,
                sent.tip,
                tip,
            )
            sent.tx, sent.raw, sent.tx_hash = tx, raw, tx_hash
            sent.max_fee, sent.tip = max_fee, tip
            sent.hashes.append(tx_hash)
            sent.sent_at = time.monotonic()
            return sent
        raise TransactionTimeout(f"could not replace {sent.tx_hash}: the node kept refusing the bumped fees")

    def _find_receipt(self, sent: Sent) -> TxReceipt | None:
        answers = self.transport.batch([("eth_getTransactionReceipt", [h]) for h in sent.hashes])
        for tx_hash, answer in zip(sent.hashes, answers, strict=True):
            if answer is not None and not isinstance(answer, RPCError):
                sent.receipt, sent.tx_hash = _format_receipt(answer), tx_hash
                return sent.receipt
        return None

    def _rebroadcast_or_recognise(self, sent: Sent) -> Sent:
        """After a node restart: recognise ``sent`` if it landed, else make sure it is in the pool."""
        if self._find_receipt(sent) is not None:
            log.info(
                "recognised %s as already mined (nonce %d of %s): not repeated",
                sent.tx_hash,
                sent.nonce,
                sent.sender,
            )
            return sent
        mined_nonce = self._chain_nonce(sent.sender, "latest")
        if mined_nonce > sent.nonce:
            raise TransactionDropped(
                f"nonce {sent.nonce} of {sent.sender} is used on chain but none of {sent.hashes} was mined",
                tx_hash=sent.tx_hash,
            )
        account = self._signers[sent.sender]
        if mined_nonce < sent.nonce and self._chain_nonce(sent.sender, "pending") < sent.nonce:
            # the chain forgot earlier nonces (fresh chain): this action never landed here; send it anew
            sent.nonce = self._next_nonce(sent.sender)
            sent.tx["nonce"] = sent.nonce
            sent.raw, sent.tx_hash = account.sign(sent.tx)
            sent.hashes = [sent.tx_hash]
        try:
            self.transport.request("eth_sendRawTransaction", ["0x" + sent.raw.hex()])
        except RPCError as error:
            message = error.message.lower()
            if not any(marker in message for marker in _KNOWN):
                if any(marker in message for marker in _NONCE_LOW) and self._find_receipt(sent) is not None:
                    return sent
                raise self._translate_rpc_error(error, sent) from None
        sent.sent_at = time.monotonic()
        log.info("rebroadcast %s (nonce %d of %s)", sent.tx_hash, sent.nonce, sent.sender)
        return sent

    def resume(
        self, sent: Sent, *, wait: bool = True, timeout: float = 120.0, replace_after: float | None = None
    ) -> TxReceipt | Sent:
        """Continue a transaction after a fault (e.g. from ``ChainUnavailable.pending``).

        If any hash of ``sent`` was mined, that receipt is returned: the action is recognised, not repeated.
        If its nonce is still free the same signed bytes are re-broadcast (same hash, so it can never
        execute twice); on a chain that forgot the account's history it is re-signed with a fresh nonce.
        If the nonce was consumed by another transaction, :class:`TransactionDropped` is raised.
        """
        try:
            self._rebroadcast_or_recognise(sent)
        except ChainUnavailable as exc:
            raise self._unavailable(exc, [sent]) from None
        if not wait:
            return sent
        return self.wait(sent, timeout=timeout, replace_after=replace_after)

    # -- failures and calls -------------------------------------------------------------------------------

    def explain_failure(self, tx_hash: str, receipt: TxReceipt) -> Exception:
        """Replay a failed transaction as a call at its block to recover the revert reason."""
        tx = self._rpc(lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)))
        if receipt["gasUsed"] >= tx["gas"]:  # all gas burnt: out of gas (reverts refund the rest)
            return TransactionReverted(f"{tx_hash} ran out of gas ({tx['gas']})", tx_hash=tx_hash)
        call = {
            "from": tx["from"],
            "to": tx["to"],
            "value": tx["value"],
            "data": tx["input"],
            "gas": tx["gas"],
        }
        try:
            # At the failed transaction's own block: same timestamp (deadline checks replay exactly); the
            # failed transaction changed no state, so this is the state it saw unless others shared its block.
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"])
        except _CONNECTION_ERRORS as exc:
            return ChainUnavailable(f"node unreachable while explaining {tx_hash}: {type(exc).__name__}")
        except Exception as exc:
            translated = translate(exc, tx_hash=tx_hash)
            if isinstance(translated, ContractRevert):
                return translated
        if receipt["gasUsed"] >= tx["gas"]:
            return TransactionReverted(f"{tx_hash} ran out of gas ({tx['gas']})", tx_hash=tx_hash)
        return TransactionReverted(f"{tx_hash} reverted (reason not recoverable)", tx_hash=tx_hash)

    def call(
        self, call: ContractFunction, *, sender: str | None = None, value: int = 0, block: Any = "latest"
    ) -> Any:
        """Run a view or simulate a call; reverts raise their typed errors."""
        params: dict[str, Any] = {"value": value}
        if sender:
            params["from"] = sender
        try:
            return call.call(params, block_identifier=block)  # type: ignore[arg-type]
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"node unreachable: {type(exc).__name__}") from None
        except Exception as exc:
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from None

    # -- conveniences -------------------------------------------------------------------------------------

    def send_value(self, account: LocalAccount, to: str, value: int) -> TxReceipt:
        """Plain ETH transfer."""
        return self.transact(account, to=to, value=value, gas=21_000)

    def deploy(
        self, account: LocalAccount, artifact: dict[str, Any], *args: Any, value: int = 0
    ) -> TxReceipt:
        """Deploy ``artifact`` with constructor ``args``; the receipt carries ``contractAddress``."""
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        data = factory.constructor(*args).data_in_transaction
        return self.transact(account, data=data, value=value)

"""Batched reads and fast event decoding for the per-call path.

A client's pre-flight checks read a few things before it sends (the deal's state, a balance, the pending
block's timestamp). Through web3.py each read is its own HTTP round trip through the middleware stack and
the ABI normalisers. Here a :class:`Read` is one JSON-RPC request plus the decoder of its answer; the
:class:`~agentmarket.tx.Transactor` sends a client's reads in one JSON-RPC batch, together with the
simulation of the transaction they guard (``Transactor.transact(reads=..., check=...)``), so a checked
transaction costs one round trip before it is signed.

:class:`EventDecoder` decodes a log of a known event with eth_abi directly and returns what web3.py's
``ContractEvent.process_log`` returns (a test compares both on real receipts), without web3.py's
per-argument normaliser walk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic, to_checksum_address
from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from .calldata import _abi_type, encoder_for, function_abi
from .errors import translate
from .rpc import RPCError

__all__ = ["EventDecoder", "Read", "decode_answer", "event_decoder"]


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return to_checksum_address(address)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _normalise(param: dict[str, Any], value: Any) -> Any:
    """web3.py's return shape for one decoded ABI value: checksummed addresses, structs as
    ``AttributeDict`` keyed by component name (``named_tree``), arrays element-wise."""
    kind = str(param["type"])
    if kind.endswith("]"):
        element = dict(param, type=kind[: kind.rindex("[")])
        return [_normalise(element, v) for v in value]
    if kind == "tuple":
        return AttributeDict(
            {c["name"]: _normalise(c, v) for c, v in zip(param["components"], value, strict=True)}
        )
    if kind == "address":
        return _checksum(value)
    return value


class Read:
    """One JSON-RPC read and the decoder of its answer (see :meth:`call`, :meth:`balance`,
    :meth:`timestamp`). Reads are plain data: build them, then run them with
    ``Transactor.read(reads)`` or alongside a transaction with ``Transactor.transact(reads=...)``."""

    __slots__ = ("_decode", "method", "params")

    def __init__(self, method: str, params: Sequence[Any], decode: Callable[[Any], Any]):
        self.method = method
        self.params = list(params)
        self._decode = decode

    def __repr__(self) -> str:
        return f"Read({self.method})"

    def decode(self, answer: Any) -> Any:
        """The decoded value of the node's ``answer`` (the JSON-RPC ``result``)."""
        return self._decode(answer)

    @classmethod
    def call(
        cls,
        contract: Any,
        fn_name: str,
        *args: Any,
        sender: str | None = None,
        block: str | int = "latest",
    ) -> Read:
        """``contract.fn_name(*args)`` as an ``eth_call``; decodes to the single output, or a tuple of
        them, shaped as web3.py's ``.call()`` returns it."""
        fn_abi = function_abi(contract, fn_name)
        data = encoder_for(fn_abi)(*args)
        request: dict[str, Any] = {"to": contract.address, "data": _hex(data)}
        if sender is not None:
            request["from"] = sender
        outputs = fn_abi.get("outputs", [])
        types = [_abi_type(o) for o in outputs]

        def decode(answer: Any) -> Any:
            raw = bytes(HexBytes(answer))
            values = [_normalise(o, v) for o, v in zip(outputs, abi_decode(types, raw), strict=True)]
            return values[0] if len(values) == 1 else tuple(values)

        return cls("eth_call", [request, hex(block) if isinstance(block, int) else block], decode)

    @classmethod
    def balance(cls, address: str, block: str = "latest") -> Read:
        """The ETH balance of ``address`` in wei."""
        return cls("eth_getBalance", [address, block], _quantity)

    @classmethod
    def timestamp(cls, block: str = "pending") -> Read:
        """The timestamp of ``block`` ("pending": the one the next transaction lands in)."""
        return cls("eth_getBlockByNumber", [block, False], _block_timestamp)


def _quantity(answer: Any) -> int:
    """A JSON-RPC quantity: hex over HTTP, already an int from the in-process chain."""
    return int(answer, 16) if isinstance(answer, str) else int(answer)


def _block_timestamp(answer: Any) -> int:
    if not isinstance(answer, dict) or answer.get("timestamp") is None:
        raise LookupError("the node returned no block")
    return _quantity(answer["timestamp"])


def decode_answer(read: Read, answer: Any) -> Any:
    """``read``'s decoded answer; an error answer raises its typed revert (or the node's error)."""
    if isinstance(answer, RPCError):
        translated = translate(getattr(answer, "original", answer))
        raise translated from None
    return read.decode(answer)


# -- events ---------------------------------------------------------------------------------------------


class EventDecoder:
    """Decodes logs of one ABI event into web3.py's ``EventData`` shape."""

    __slots__ = ("_data", "_data_types", "_indexed", "_order", "name", "topic")

    def __init__(self, event_abi: dict[str, Any]):
        self.name = str(event_abi["name"])
        self.topic = HexBytes(event_abi_to_log_topic(cast("ABIEvent", event_abi)))
        inputs = event_abi.get("inputs", [])
        self._indexed = [p for p in inputs if p.get("indexed")]
        self._data = [p for p in inputs if not p.get("indexed")]
        self._data_types = [_abi_type(p) for p in self._data]
        self._order = [p["name"] for p in inputs]

    def __repr__(self) -> str:
        return f"EventDecoder({self.name})"

    def args(self, log: Any) -> AttributeDict[str, Any]:
        """The event's arguments, in ABI order (indexed dynamic types stay their 32-byte topic hash)."""
        topics = log["topics"]
        if len(topics) != len(self._indexed) + 1 or bytes(HexBytes(topics[0])) != bytes(self.topic):
            raise ValueError(f"log is not a {self.name} event")
        values: dict[str, Any] = {}
        for param, topic in zip(self._indexed, topics[1:], strict=True):
            raw = bytes(HexBytes(topic))
            kind = _abi_type(param)
            if _is_dynamic(kind):
                values[param["name"]] = raw
            else:
                values[param["name"]] = _normalise(param, abi_decode([kind], raw)[0])
        data = bytes(HexBytes(log["data"]))
        for param, value in zip(self._data, abi_decode(self._data_types, data), strict=True):
            values[param["name"]] = _normalise(param, value)
        return AttributeDict({name: values[name] for name in self._order})

    def process_log(self, log: Any) -> AttributeDict[str, Any]:
        """What web3.py's ``ContractEvent.process_log`` returns for ``log``."""
        return AttributeDict(
            {
                "args": self.args(log),
                "event": self.name,
                "logIndex": log["logIndex"],
                "transactionIndex": log["transactionIndex"],
                "transactionHash": log["transactionHash"],
                "address": log["address"],
                "blockHash": log["blockHash"],
                "blockNumber": log["blockNumber"],
            }
        )


def _is_dynamic(kind: str) -> bool:
    return kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")


# id of an event's ABI entry -> (that entry, its decoder): built once per entry, looked up without hashing it
_DECODERS: dict[int, tuple[dict[str, Any], EventDecoder]] = {}
_DECODERS_LOCK = threading.Lock()


def event_decoder(event_abi: dict[str, Any]) -> EventDecoder:
    """The (cached) decoder of one ABI event entry."""
    cached = _DECODERS.get(id(event_abi))
    if cached is None or cached[0] is not event_abi:
        with _DECODERS_LOCK:
            if len(_DECODERS) > 4096:
                _DECODERS.clear()
            cached = _DECODERS[id(event_abi)] = (event_abi, EventDecoder(event_abi))
    return cached[1]

"""Fast ABI encoding of contract calls for the transaction fast path.

web3.py's ``ContractFunction._encode_transaction_data`` walks every argument through its normaliser
and validator stack (checksumming each address several times): ~1-3 ms per call with a 15-field
struct, more than signing and sending together. Here the selector and the ABI types of a function are
computed once, and arguments go straight to ``eth_abi.encode``. Anything eth_abi does not take as is
(a struct passed as a dict, a hex string for ``bytes32``, an ENS name) falls back to web3.py, so the
result is always what web3.py would send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak


def _abi_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


_HEX40 = re.compile(r"0x[0-9a-fA-F]{40}")


class _Slow(Exception):
    """A value the word encoder does not take as is: eth-abi encodes it (or raises its own error)."""


def _leaves(param: dict[str, Any]) -> list[str] | None:
    """The static word types of a parameter (a flat tuple's components in order), or None when any part
    is dynamic, nested or of a type the word encoder leaves to eth-abi."""
    kind = str(param["type"])
    if kind == "tuple":
        out = [str(c["type"]) for c in param["components"]]
        return out if all(_is_word(t) for t in out) else None
    return [kind] if _is_word(kind) else None


def _is_word(kind: str) -> bool:
    return kind in ("address", "bool", "bytes32") or (kind.startswith("uint") and kind[4:].isdigit())


def _word(kind: str, v: Any) -> bytes:
    """One 32-byte word as eth-abi's strict encoders write it; anything they might treat otherwise
    raises :class:`_Slow`."""
    if kind == "address":
        if isinstance(v, str) and _HEX40.fullmatch(v):
            # eth-abi takes any 40 hex digits (it does not check an EIP-55 checksum): so does this path
            return bytes(12) + bytes.fromhex(v[2:])
        if isinstance(v, (bytes, bytearray)) and len(v) == 20:
            return bytes(12) + bytes(v)
        raise _Slow
    if kind == "bool":
        if v is True or v is False:
            return bytes(31) + (b"\x01" if v else b"\x00")
        raise _Slow
    if kind == "bytes32":
        if isinstance(v, (bytes, bytearray)) and len(v) == 32:
            return bytes(v)
        raise _Slow
    if type(v) is int and 0 <= v < 1 << int(kind[4:]):
        return v.to_bytes(32, "big")
    raise _Slow


def _fields(value: Any, width: int) -> Sequence[Any]:
    """A flat tuple argument's values: a tuple or list of exactly ``width`` items (as eth-abi takes)."""
    if not isinstance(value, (tuple, list)) or len(value) != width:
        raise _Slow
    return value


class FunctionEncoder:
    """Encodes calls of one ABI function: ``encoder(*args) -> calldata``.

    Functions whose arguments are static words (``address``, ``bool``, ``bytes32``, ``uintN``, tuples of
    them) plus top-level ``bytes`` are encoded by concatenating words: eth-abi's generic encoder took
    ~1-3 ms per 15-field struct, per transaction. Any other value or type goes to eth-abi, so the output
    (and every error) is eth-abi's."""

    __slots__ = ("name", "plan", "selector", "types")

    def __init__(self, fn_abi: dict[str, Any]):
        self.name = str(fn_abi["name"])
        inputs = fn_abi.get("inputs", [])
        self.types = [_abi_type(p) for p in inputs]
        self.selector = keccak(text=f"{self.name}({','.join(self.types)})")[:4]
        plan: list[tuple[str, list[str]]] = []
        for p in inputs:
            leaves = [] if p["type"] == "bytes" else _leaves(p)
            if leaves is None:
                break
            plan.append(
                ("bytes" if p["type"] == "bytes" else "tuple" if p["type"] == "tuple" else "word", leaves)
            )
        self.plan: list[tuple[str, list[str]]] | None = plan if len(plan) == len(inputs) else None

    def __call__(self, *args: Any) -> bytes:
        if len(args) != len(self.types):
            raise TypeError(f"{self.name} takes {len(self.types)} arguments, got {len(args)}")
        if self.plan is not None:
            try:
                return self.selector + self._words(args)
            except _Slow:
                pass
        return self.selector + abi_encode(self.types, args)

    def _words(self, args: Sequence[Any]) -> bytes:
        assert self.plan is not None
        head_size = sum(32 if kind == "bytes" else 32 * len(leaves) for kind, leaves in self.plan)
        head: list[bytes] = []
        tail: list[bytes] = []
        tail_size = 0
        for (kind, leaves), arg in zip(self.plan, args, strict=True):
            if kind == "word":
                head.append(_word(leaves[0], arg))
            elif kind == "tuple":
                head.extend(_word(t, v) for t, v in zip(leaves, _fields(arg, len(leaves)), strict=True))
            else:
                if not isinstance(arg, (bytes, bytearray)):
                    raise _Slow
                head.append((head_size + tail_size).to_bytes(32, "big"))
                padded = bytes(arg) + bytes(-len(arg) % 32)
                tail.append(len(arg).to_bytes(32, "big") + padded)
                tail_size += 32 + len(padded)
        return b"".join(head) + b"".join(tail)

    def __repr__(self) -> str:
        return f"FunctionEncoder({self.name}({','.join(self.types)}))"


_CACHE_LIMIT = 4096
_by_id: dict[int, tuple[dict[str, Any], FunctionEncoder]] = {}


@lru_cache(maxsize=1024)
def _encoder(fn_abi_json: str) -> FunctionEncoder:
    return FunctionEncoder(json.loads(fn_abi_json))


def encoder_for(fn_abi: dict[str, Any]) -> FunctionEncoder:
    """The (cached) encoder of one ABI function entry (by identity first: no re-serialising per call)."""
    cache = _by_id.get(id(fn_abi))
    if cache is None or cache[0] is not fn_abi:
        if len(_by_id) > _CACHE_LIMIT:  # ABIs rebuilt per call must not grow this without bound
            _by_id.clear()
        cache = _by_id[id(fn_abi)] = (fn_abi, _encoder(json.dumps(fn_abi, sort_keys=True)))
    return cache[1]


def encode_call(call: Any) -> bytes:
    """Calldata of a web3.py ``ContractFunction`` or a :class:`PreparedCall` (fast path; falls back to
    web3.py when needed)."""
    if isinstance(call, PreparedCall):
        return call.data
    fn_abi = getattr(call, "abi", None)
    args = getattr(call, "args", None)
    if isinstance(fn_abi, dict) and args is not None and not getattr(call, "kwargs", None):
        try:
            return encoder_for(fn_abi)(*args)
        except Exception:
            pass
    return bytes.fromhex(str(call._encode_transaction_data())[2:])


# (id of an ABI list, function name) -> (that list, the function's entry or None when it is overloaded or
# absent): each contract's ABI is scanned once per function, not on every call
_FUNCTIONS: dict[tuple[int, str], tuple[Any, dict[str, Any] | None]] = {}


def _lookup(contract: Any, fn_name: str) -> dict[str, Any] | None:
    abi = contract.abi
    cached = _FUNCTIONS.get((id(abi), fn_name))
    if cached is not None and cached[0] is abi:
        return cached[1]
    matches = [e for e in abi if e.get("type") == "function" and e.get("name") == fn_name]
    entry = matches[0] if len(matches) == 1 else None
    if len(_FUNCTIONS) > _CACHE_LIMIT:
        _FUNCTIONS.clear()
    _FUNCTIONS[(id(abi), fn_name)] = (abi, entry)
    return entry


def function_abi(contract: Any, fn_name: str) -> dict[str, Any]:
    """The ABI entry of ``contract``'s function ``fn_name`` (which must exist and not be overloaded)."""
    entry = _lookup(contract, fn_name)
    if entry is None:
        raise ValueError(
            f"{fn_name} is not exactly one function of {getattr(contract, 'address', 'this ABI')}"
        )
    return entry


def calldata(contract: Any, fn_name: str, *args: Any) -> bytes:
    """Calldata for ``contract.fn_name(*args)`` without building a web3.py ``ContractFunction``
    (which validates every argument on construction). An overloaded function goes through web3.py."""
    entry = _lookup(contract, fn_name)
    if entry is not None:
        try:
            return encoder_for(entry)(*args)
        except Exception:
            pass  # an argument eth_abi does not take as is (a dict struct, a hex string): web3.py decides
    return encode_call(getattr(contract.functions, fn_name)(*args))


@dataclass(frozen=True)
class PreparedCall:
    """A contract call already encoded: what the Transactor needs of a web3.py ``ContractFunction``
    (``address``, ``fn_name``, calldata) without web3.py's per-argument validation on construction."""

    address: str
    fn_name: str
    data: bytes

    def __repr__(self) -> str:
        return f"PreparedCall({self.fn_name} on {self.address})"


def prepare(contract: Any, fn_name: str, *args: Any) -> PreparedCall:
    """``contract.functions.fn_name(*args)`` as a :class:`PreparedCall` (encoded as web3.py would)."""
    return PreparedCall(contract.address, fn_name, calldata(contract, fn_name, *args))


_STATIC = ("address", "bool", "bytes32")


def decode_static(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """Decode a head of static words (``address``, ``bool``, ``bytes32``, ``uintN``) as ``eth_abi.decode``
    would (lowercase hex addresses), by slicing 32-byte words: eth-abi's generic decoder took ~1 ms per
    15-field deal struct, per trade. Any other type falls back to eth-abi."""
    if not all(t in _STATIC or (t.startswith("uint") and t[4:].isdigit()) for t in types):
        return tuple(abi_decode(list(types), data))
    if len(data) < 32 * len(types):
        raise ValueError(f"{len(data)} bytes cannot hold {len(types)} static words")
    out: list[Any] = []
    for k, kind in enumerate(types):
        word = data[32 * k : 32 * k + 32]
        if kind == "address":
            out.append("0x" + word[12:].hex())
        elif kind == "bytes32":
            out.append(bytes(word))
        elif kind == "bool":
            out.append(word[31] == 1)
        else:
            out.append(int.from_bytes(word, "big"))
    return tuple(out)

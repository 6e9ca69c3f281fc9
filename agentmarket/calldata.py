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
from collections.abc import Sequence
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


class FunctionEncoder:
    """Encodes calls of one ABI function: ``encoder(*args) -> calldata``."""

    __slots__ = ("name", "selector", "types")

    def __init__(self, fn_abi: dict[str, Any]):
        self.name = str(fn_abi["name"])
        self.types = [_abi_type(p) for p in fn_abi.get("inputs", [])]
        self.selector = keccak(text=f"{self.name}({','.join(self.types)})")[:4]

    def __call__(self, *args: Any) -> bytes:
        if len(args) != len(self.types):
            raise TypeError(f"{self.name} takes {len(self.types)} arguments, got {len(args)}")
        return self.selector + abi_encode(self.types, args)

    def __repr__(self) -> str:
        return f"FunctionEncoder({self.name}({','.join(self.types)}))"


@lru_cache(maxsize=1024)
def _encoder(fn_abi_json: str) -> FunctionEncoder:
    return FunctionEncoder(json.loads(fn_abi_json))


def encoder_for(fn_abi: dict[str, Any]) -> FunctionEncoder:
    """The (cached) encoder of one ABI function entry."""
    return _encoder(json.dumps(fn_abi, sort_keys=True))


def encode_call(call: Any) -> bytes:
    """Calldata of a web3.py ``ContractFunction`` (fast path; falls back to web3.py when needed)."""
    fn_abi = getattr(call, "abi", None)
    args = getattr(call, "args", None)
    if isinstance(fn_abi, dict) and args is not None and not getattr(call, "kwargs", None):
        try:
            cache = _by_id.get(id(fn_abi))
            if cache is None or cache[0] is not fn_abi:
                cache = _by_id[id(fn_abi)] = (fn_abi, encoder_for(fn_abi))
            return cache[1](*args)
        except Exception:
            pass
    return bytes.fromhex(str(call._encode_transaction_data())[2:])


_by_id: dict[int, tuple[dict[str, Any], FunctionEncoder]] = {}


def calldata(contract: Any, fn_name: str, *args: Any) -> bytes:
    """Calldata for ``contract.fn_name(*args)`` without building a web3.py ``ContractFunction``
    (which validates every argument on construction). The function must not be overloaded."""
    abi = contract.abi
    cached = _named.get((id(abi), fn_name))
    if cached is None or cached[0] is not abi:
        # scanning the ABI and serialising the entry for the encoder cache cost more than the encoding
        # itself for struct arguments: once per (ABI, function)
        matches = [e for e in abi if e.get("type") == "function" and e.get("name") == fn_name]
        cached = _named[(id(abi), fn_name)] = (abi, encoder_for(matches[0]) if len(matches) == 1 else None)
    if cached[1] is None:
        return encode_call(getattr(contract.functions, fn_name)(*args))
    return cached[1](*args)


_named: dict[tuple[int, str], tuple[Any, FunctionEncoder | None]] = {}


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

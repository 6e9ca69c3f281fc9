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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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

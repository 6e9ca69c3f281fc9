"""Exception hierarchy and revert decoding.

Every exception agentmarket raises derives from :class:`AgentMarketError`. Contract reverts are decoded
into one class per Solidity custom error (named after it, built from the shipped ABIs), plus
:class:`RequireError` for ``require(cond, "reason")`` and :class:`PanicError` for ``Panic(uint256)``.
The embedded chain (eth-tester raises ``TransactionFailed`` with the raw bytes in its message) and JSON-RPC
nodes (error data in the response) decode to the same classes.

Client pre-flight checks raise before any transaction is sent; those classes also derive from
``ValueError`` or ``PermissionError`` where that is the natural reading.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError


class AgentMarketError(Exception):
    """Root of every agentmarket exception."""


# -- toolchain ---------------------------------------------------------------------------------------


class CompilerError(AgentMarketError):
    """solc rejected the sources; ``messages`` holds its ``file:line`` diagnostics."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        more = f" (+{len(self.messages) - 1} more)" if len(self.messages) > 1 else ""
        super().__init__((self.messages[0] if self.messages else "solc failed") + more)


class CompilerUnavailable(AgentMarketError):
    """No usable compiler (no native solc, node or node_modules)."""

    def __init__(self, cause: str, *, fix: str):
        self.cause, self.fix = cause, fix
        super().__init__(f"{cause} (fix: {fix})")


class ConfigError(AgentMarketError, ValueError):
    """Bad configuration: a manifest for another chain, a key for no funded account, a bad URL."""


class ChainUnavailable(AgentMarketError, ConnectionError):
    """The node cannot be reached (down, wrong URL, or it died mid-request).

    ``pending`` lists the :class:`agentmarket.tx.Sent` handles that were in flight when the node went
    away; pass them to ``Transactor.resume`` once it is back: a transaction that already landed is
    recognised by its hash and not sent again.
    """

    def __init__(self, message: str = "", *, pending: list[Any] | None = None):
        self.pending: list[Any] = list(pending or [])
        super().__init__(message)


class TransactionTimeout(AgentMarketError, TimeoutError):
    """A transaction was not mined in time, even after fee bumps."""


class TransactionDropped(AgentMarketError):
    """The nonce of a sent transaction was consumed by another transaction: it will never be mined."""

    def __init__(self, message: str, *, tx_hash: str | None = None):
        self.tx_hash = tx_hash
        super().__init__(message)


class TransactionReverted(AgentMarketError):
    """A mined transaction failed and the reason could not be decoded."""

    def __init__(self, message: str, *, tx_hash: str | None = None, data: bytes = b""):
        self.tx_hash, self.data = tx_hash, data
        super().__init__(message)


# -- pre-flight (raised before anything is sent) ----------------------------------------------------


class PreflightError(AgentMarketError):
    """A client check failed before sending: no gas was spent, nothing changed on chain."""


class InvalidInput(PreflightError, ValueError):
    """An argument is malformed: bad address, non-positive amount, past deadline, oversize quantity.

    ``param`` names the offending parameter when the check knows it (``None`` otherwise).
    """

    def __init__(self, message: str = "", *, param: str | None = None):
        self.param = param
        super().__init__(message)


class InvalidAmount(InvalidInput):
    """An amount is not an exact integer in the asset's smallest unit (float, bool, numeric string,
    fractional ``Decimal``) or is out of range."""


class InvalidAddress(InvalidInput):
    """A value is not a 20-byte hex address, or a mixed-case address fails its EIP-55 checksum."""


class NotAContract(InvalidInput):
    """An address that must hold a contract (an ERC-20 asset, a contract wallet) has no code."""


class UnsafeTerms(InvalidInput):
    """The terms would let a counterparty take money or an option for free (an open buy request with no
    arbiter, no designated taker and no bond; procurement without an arbiter or a bond; a sell-side
    auction without a seller bond); the client refuses them unless the caller opts in explicitly
    (``allow_unsafe=True`` / ``allow_unprotected=True``) where that is allowed at all."""


class NotAuthorized(PreflightError, PermissionError):
    """The sender does not hold the role the action needs."""


class InvalidState(PreflightError):
    """The object is not in a state that allows the action (or a deadline says no)."""


class ClosePending(InvalidState):
    """A payee's voucher store refuses a voucher above a cooperative close it signed that is still valid
    on chain (the payer could submit that close and undercut the voucher)."""


class InsufficientFunds(PreflightError):
    """The sender's balance cannot cover the amount plus gas."""


class InsufficientAllowance(PreflightError):
    """The ERC-20 allowance is too small and approving was not requested."""


class MandateViolation(PreflightError, PermissionError):
    """An agent's spend mandate forbids the action (budget, cap, asset, price band, rate)."""


class SignatureError(PreflightError, ValueError):
    """A signature does not verify for the claimed signer, domain or content."""


# -- contract reverts ---------------------------------------------------------------------------------


class ContractRevert(AgentMarketError, ContractLogicError):
    """A contract reverted (on chain, or in the simulation a client ran).

    ``error_name`` is the Solidity error name, ``arguments`` its decoded arguments by name,
    ``data`` the raw revert bytes. Also a web3 ``ContractLogicError``, so code written against web3.py
    (``except ContractLogicError``) catches agentmarket's decoded reverts too.
    """

    error_name = "ContractRevert"
    signature = ""
    # web3 types ContractLogicError.data as the hex string it stores; ContractRevert's documented
    # ``data`` is the raw revert bytes (public API since v1), so the attribute is narrowed on purpose.
    data: bytes  # type: ignore[assignment]

    def __init__(
        self, arguments: dict[str, Any] | None = None, *, data: bytes = b"", tx_hash: str | None = None
    ):
        self.arguments = dict(arguments or {})
        self.tx_hash = tx_hash
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.arguments.items())
        # ContractLogicError.__init__ stores message and data: pass them, then keep data as raw bytes
        super().__init__(f"{self.error_name}({rendered})", "0x" + bytes(data).hex())
        self.data = data

    def __getattr__(self, item: str) -> Any:
        arguments = self.__dict__.get("arguments", {})
        if item in arguments:
            return arguments[item]
        raise AttributeError(item)


class RequireError(ContractRevert):
    """``require(cond, "reason")`` or ``revert("reason")``: ``Error(string)``."""

    error_name = "Error"
    signature = "Error(string)"

    @property
    def reason(self) -> str:
        return str(self.arguments.get("reason", ""))


PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array encoding",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function",
}


class PanicError(ContractRevert):
    """``Panic(uint256)``: assert, overflow, division by zero, bad index."""

    error_name = "Panic"
    signature = "Panic(uint256)"

    @property
    def code(self) -> int:
        return int(self.arguments.get("code", 0))

    def __str__(self) -> str:
        return f"Panic(0x{self.code:02x}: {PANIC_CODES.get(self.code, 'unknown')})"


class EmptyRevert(ContractRevert):
    """A revert with no data (``revert()``, out of gas, or a call to code-less address)."""

    error_name = "EmptyRevert"


class UnknownRevert(ContractRevert):
    """Revert data whose selector matches no known error."""

    error_name = "UnknownRevert"


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


# selector -> (class, [arg names], [arg types])
_REGISTRY: dict[bytes, tuple[type[ContractRevert], list[str], list[str]]] = {
    bytes.fromhex("08c379a0"): (RequireError, ["reason"], ["string"]),
    bytes.fromhex("4e487b71"): (PanicError, ["code"], ["uint256"]),
}
_CLASSES: dict[str, type[ContractRevert]] = {}


def _abi_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


def register_abi(abi: list[dict[str, Any]]) -> None:
    """Register every custom error of an ABI (done for the shipped artifacts at import)."""
    for entry in abi:
        if entry.get("type") != "error":
            continue
        name = entry["name"]
        types = [_abi_type(p) for p in entry.get("inputs", [])]
        names = [p.get("name") or f"arg{i}" for i, p in enumerate(entry.get("inputs", []))]
        signature = f"{name}({','.join(types)})"
        selector = keccak(text=signature)[:4]
        if selector in _REGISTRY:
            continue
        cls = _CLASSES.get(name)
        if cls is None:
            cls = type(
                name,
                (ContractRevert,),
                {
                    "error_name": name,
                    "signature": signature,
                    "__module__": __name__,
                    "__doc__": f"Solidity custom error ``{signature}``.",
                },
            )
            _CLASSES[name] = cls
        _REGISTRY[selector] = (cls, names, types)


def _register_shipped() -> None:
    directory = Path(__file__).resolve().parent / "artifacts"
    for path in sorted(directory.glob("*.json")):
        try:
            register_abi(json.loads(path.read_text()).get("abi", []))
        except (OSError, ValueError):
            continue


def revert_class(name: str) -> type[ContractRevert]:
    """The exception class for Solidity error ``name`` (e.g. ``"EscrowInvalidState"``)."""
    try:
        return _CLASSES[name]
    except KeyError:
        raise AttributeError(f"no custom error named {name} in the shipped ABIs") from None


def __getattr__(name: str) -> type[ContractRevert]:
    # errors.EscrowInvalidState etc. resolve to the classes built from the ABIs.
    if name in _CLASSES:
        return _CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _normalise(value: Any, kind: str) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    return value


def decode_revert(data: bytes, *, tx_hash: str | None = None) -> ContractRevert:
    """Turn raw revert bytes into the matching exception instance."""
    if not data:
        return EmptyRevert(data=b"", tx_hash=tx_hash)
    entry = _REGISTRY.get(bytes(data[:4]))
    if entry is None:
        return UnknownRevert({"selector": "0x" + bytes(data[:4]).hex()}, data=bytes(data), tx_hash=tx_hash)
    cls, names, types = entry
    try:
        values = abi_decode(types, bytes(data[4:])) if types else ()
    except Exception:
        return UnknownRevert({"selector": "0x" + bytes(data[:4]).hex()}, data=bytes(data), tx_hash=tx_hash)
    arguments = {n: _normalise(v, t) for n, v, t in zip(names, values, types, strict=True)}
    return cls(arguments, data=bytes(data), tx_hash=tx_hash)


def revert_data_from_exception(exc: BaseException) -> bytes | None:
    """Extract raw revert bytes from an eth-tester or web3.py exception; None if it is not a revert."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes.fromhex(data["data"][2:])
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict):
        err = response.get("error") or {}
        if isinstance(err.get("data"), str) and err["data"].startswith("0x"):
            return bytes.fromhex(err["data"][2:])
    if type(exc).__name__ == "TransactionFailed" or "execution reverted" in str(exc):
        message = exc.args[0] if exc.args else ""
        if isinstance(message, Exception):
            message = message.args[0] if message.args else ""
        if isinstance(message, bytes):
            return message
        text = str(message)
        if text.startswith("execution reverted:"):
            text = text[len("execution reverted:") :].strip()
        elif text.startswith("execution reverted"):
            return b""
        if text[:2] in ("b'", 'b"'):
            try:
                return bytes(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                pass
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                pass
        # eth-tester already decoded Error(string) into its text: re-encode it.
        from eth_abi import encode as abi_encode

        return bytes.fromhex("08c379a0") + abi_encode(["string"], [text])
    return None


def translate(exc: BaseException, *, tx_hash: str | None = None) -> BaseException:
    """Map a backend exception to an agentmarket one (the input itself if it is not a revert)."""
    if isinstance(exc, AgentMarketError):
        return exc
    data = revert_data_from_exception(exc)
    if data is None:
        return exc
    return decode_revert(data, tx_hash=tx_hash)


# The classes of the shipped ABIs' errors, generated by `agentmarket compile` so type checkers see them
# (errors.EscrowInvalidState, one base per family: errors.EscrowRevert, ...); imported last because they
# subclass ContractRevert above. ABIs registered later still get classes built on the fly.
from . import _errors_generated  # noqa: E402
from ._errors_generated import *  # noqa: E402,F403

_CLASSES.update({cls.error_name: cls for cls in _errors_generated.REVERTS})
_register_shipped()

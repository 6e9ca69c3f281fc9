"""Struct field lists read from the shipped contract ABIs, once.

Every domain struct (:class:`~agentmarket.types.DealTerms`, :class:`~agentmarket.types.Offer`,
:class:`~agentmarket.types.DealTemplate`, the channel key) encodes, decodes and hashes through the field
list of its Solidity struct as the compiler wrote it into the artifact: a field added, removed or reordered
in the contract changes the Python encoding with it, and :func:`bind` refuses to import a dataclass whose
fields no longer match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from ..compiler import load_artifact


@dataclass(frozen=True)
class StructField:
    """One member of a Solidity struct: its Python (snake case) and Solidity names and its ABI type."""

    py: str
    sol: str
    abi_type: str


@dataclass(frozen=True)
class StructSpec:
    """A Solidity struct as its ABI describes it."""

    name: str
    fields: tuple[StructField, ...]

    @property
    def abi_type(self) -> str:
        """The tuple type for ``eth_abi`` (``"(address,uint128,...)"``)."""
        return "(" + ",".join(f.abi_type for f in self.fields) + ")"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.py for f in self.fields)

    def kwargs(self, value: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
        """Python-named fields of a decoded ABI value: a dict keyed by Solidity names, or a tuple in ABI
        order (what web3 returns for events and calls)."""
        if isinstance(value, Mapping):
            return {f.py: value[f.sol] for f in self.fields}
        return {f.py: v for f, v in zip(self.fields, value, strict=True)}


def snake(name: str) -> str:
    """``penaltyBpsPerHour`` -> ``penalty_bps_per_hour``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _abi_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


def _find(params: list[dict[str, Any]], struct: str) -> list[dict[str, Any]] | None:
    for param in params:
        internal = str(param.get("internalType", ""))
        if internal.startswith("struct ") and internal[7:].split(".")[-1].rstrip("[]") == struct:
            return list(param["components"])
        found = _find(list(param.get("components", [])), struct)
        if found is not None:
            return found
    return None


@cache
def struct_spec(artifact: str, struct: str) -> StructSpec:
    """The fields of Solidity struct ``struct`` as used in the ABI of the shipped ``artifact``."""
    for entry in load_artifact(artifact)["abi"]:
        for side in ("inputs", "outputs"):
            components = _find(list(entry.get(side, [])), struct)
            if components is not None:
                return StructSpec(
                    struct,
                    tuple(StructField(snake(c["name"]), c["name"], _abi_type(c)) for c in components),
                )
    raise LookupError(f"struct {struct} does not appear in the ABI of {artifact}")


def bind(cls: type[Any], spec: StructSpec) -> StructSpec:
    """Check that dataclass ``cls`` mirrors ``spec`` (same field names; extra Python-only fields are
    not allowed) and return ``spec``; raised at import, so a contract change cannot drift silently."""
    ours = {f.name for f in fields(cls)}
    theirs = set(spec.names)
    if ours != theirs:
        raise TypeError(
            f"{cls.__name__} does not mirror the ABI struct {spec.name}: missing {sorted(theirs - ours)}, "
            f"extra {sorted(ours - theirs)}"
        )
    return spec

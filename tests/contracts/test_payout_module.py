"""One payout module: every contract that pays out takes its credits ABI from ``ICredits`` (issue 12,
Structure). Reads the committed artifacts only (no chain): an ABI that declares its own withdraw error or
credit event, or lacks the shared ones, fails here."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import load_artifact

PAYERS = (
    "AgentEscrow",
    "PaymentChannels",
    "EnglishAuction",
    "DutchAuction",
    "SealedBidAuction",
    "ProcurementAuction",
    "CallMarket",  # on the Credits base since the books (its own withdraw and credit errors are gone)
)


def _entries(name: str, kind: str) -> dict[str, Any]:
    return {e["name"]: e for e in load_artifact(name)["abi"] if e.get("type") == kind}


def _signature(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What callers and log decoders depend on (parameter names of returns may differ)."""
    inputs = tuple((i["type"], i.get("indexed", False)) for i in entry.get("inputs", []))
    outputs = tuple(o["type"] for o in entry.get("outputs", []))
    return entry["type"], entry["name"], inputs, outputs


@pytest.mark.parametrize("name", PAYERS)
def test_credits_abi_comes_from_icredits(name: str) -> None:
    abi = {_signature(e) for e in load_artifact(name)["abi"] if "name" in e}
    for entry in load_artifact("ICredits")["abi"]:
        assert _signature(entry) in abi, f"{name} lacks ICredits.{entry['name']} (or declares it differently)"


@pytest.mark.parametrize("name", PAYERS)
def test_no_contract_declares_its_own_credit_errors(name: str) -> None:
    errors = _entries(name, "error")
    own = [
        e
        for e in errors
        if not e.startswith("Credits")
        and any(word in e for word in ("NothingToWithdraw", "TransferFailed", "InsufficientGas"))
    ]
    assert own == []


@pytest.mark.parametrize("name", PAYERS)
def test_payout_gas_is_the_shared_stipend(name: str) -> None:
    functions = _entries(name, "function")
    assert "PAYOUT_GAS" in functions  # Credits.PAYOUT_GAS, declared once

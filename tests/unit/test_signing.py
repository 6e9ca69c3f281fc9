"""The fast signer produces exactly eth-account's bytes and never shows its key."""

from __future__ import annotations

import pickle

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from agentmarket.gaslimits import GasTable
from agentmarket.signing import Signer

KEY = "0x" + "11" * 32


@pytest.mark.parametrize(
    "tx",
    [
        {"to": "0x" + "ab" * 20, "value": 1, "data": b"", "gas": 21_000, "nonce": 0},
        {
            "to": "0x" + "cd" * 20,
            "value": 0,
            "data": bytes.fromhex("a9059cbb") + b"\x01" * 64,
            "gas": 90_000,
            "nonce": 2**40,
        },
        {"value": 10**30, "data": b"\x60\x00" * 500, "gas": 3_000_000, "nonce": 7},  # contract creation
    ],
)
@pytest.mark.parametrize("chain_id", [1, 31337, 131277322940537])
def test_fast_signer_matches_eth_account(tx: dict[str, object], chain_id: int) -> None:
    account = Account.from_key(KEY)
    full = {**tx, "chainId": chain_id, "maxFeePerGas": 3 * 10**9 + 7, "maxPriorityFeePerGas": 10**9}
    if "to" in full:
        full["to"] = Web3.to_checksum_address(str(full["to"]))
    expected = account.sign_transaction(full)
    raw, tx_hash = Signer(account).sign(full)
    assert raw == bytes(expected.raw_transaction)
    assert tx_hash == "0x" + bytes(expected.hash).hex()


def test_signer_hides_key() -> None:
    signer = Signer(Account.from_key(KEY))
    assert "11" * 32 not in repr(signer) + str(signer)
    with pytest.raises(TypeError):
        pickle.dumps(signer)


def test_gas_table_limits() -> None:
    table = GasTable({"escrow.accept": 40_000}, margin=1.3, headroom=10_000)
    assert table.limit("escrow.accept") == 62_000
    assert table.limit("nope") is None
    table.register("nope", 100)
    assert table.limit("nope") == 10_130
    with pytest.raises(ValueError):
        GasTable({}, margin=0.9)


_rlp_leaf = st.one_of(st.integers(min_value=0, max_value=2**256 - 1), st.binary(max_size=300))


@given(st.lists(st.one_of(_rlp_leaf, st.lists(_rlp_leaf, max_size=3)), max_size=12))
def test_fast_rlp_matches_pyrlp(items):
    import rlp

    from agentmarket.signing import rlp_list

    assert rlp_list(items) == rlp.encode(items)

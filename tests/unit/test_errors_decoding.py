"""The same revert decodes to the same typed exception on eth-tester and on anvil."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from helpers import load_artifact

from agentmarket import errors
from agentmarket.chain import Chain


@pytest.fixture
def reverter(any_chain: Chain):
    artifact = load_artifact("Reverter")
    receipt = any_chain.transactor.deploy(any_chain.accounts[0], artifact)
    return any_chain, any_chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def test_custom_error_with_arguments(reverter):
    chain, contract = reverter
    sender = chain.accounts[1]
    with pytest.raises(errors.ContractRevert) as info:
        chain.transactor.transact(sender, contract.functions.customError(7))
    exc = info.value
    assert type(exc).__name__ == "ReverterCustom"
    assert exc.arguments == {"code": 7, "who": sender.address, "tag": keccak(text="tag"), "why": "custom"}
    assert exc.code == 7 and exc.who == sender.address
    assert isinstance(exc, errors.revert_class("ReverterCustom"))


def test_bare_custom_error(reverter):
    chain, contract = reverter
    with pytest.raises(errors.revert_class("ReverterBare")):
        chain.transactor.transact(chain.accounts[1], contract.functions.bareError())


def test_require_string(reverter):
    chain, contract = reverter
    with pytest.raises(errors.RequireError) as info:
        chain.transactor.transact(chain.accounts[1], contract.functions.requireString())
    assert info.value.reason == "Reverter: require failed"


@pytest.mark.parametrize(("fn", "args", "code"), [("panicDivide", [0], 0x12), ("panicAssert", [], 0x01)])
def test_panic(reverter, fn, args, code):
    chain, contract = reverter
    with pytest.raises(errors.PanicError) as info:
        chain.transactor.transact(chain.accounts[1], getattr(contract.functions, fn)(*args))
    assert info.value.code == code


def test_empty_revert(reverter):
    chain, contract = reverter
    with pytest.raises(errors.EmptyRevert):
        chain.transactor.transact(chain.accounts[1], contract.functions.emptyRevert())


def test_mined_failure_is_decoded_too(reverter):
    """With an explicit gas limit nothing is simulated: the mined failure is replayed and decoded."""
    chain, contract = reverter
    with pytest.raises(errors.revert_class("ReverterCustom")) as info:
        chain.transactor.transact(chain.accounts[1], contract.functions.customError(9), gas=200_000)
    assert info.value.code == 9
    assert info.value.tx_hash is not None
    assert chain.w3.eth.get_transaction_receipt(info.value.tx_hash)["status"] == 0


def test_views_decode_reverts(reverter):
    chain, contract = reverter
    with pytest.raises(errors.revert_class("ReverterCustom")):
        chain.transactor.call(contract.functions.customError(3), sender=chain.accounts[0].address)


def test_decode_unknown_selector():
    exc = errors.decode_revert(bytes.fromhex("deadbeef") + b"\x00" * 32)
    assert isinstance(exc, errors.UnknownRevert)
    assert exc.arguments["selector"] == "0xdeadbeef"


def test_decode_malformed_payload_of_known_selector():
    exc = errors.decode_revert(bytes.fromhex("08c379a0") + b"\x01")
    assert isinstance(exc, errors.UnknownRevert)


def test_eth_tester_message_forms():
    custom = keccak(text="ReverterBare()")[:4]
    assert errors.revert_data_from_exception(Exception(f"execution reverted: {custom!r}")) == custom
    text = errors.revert_data_from_exception(Exception("execution reverted: nope"))
    assert text == bytes.fromhex("08c379a0") + encode(["string"], ["nope"])
    assert errors.revert_data_from_exception(ValueError("unrelated")) is None

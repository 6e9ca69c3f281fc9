"""The revert classes are generated from the shipped ABIs into a module type checkers read."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak
from web3.exceptions import ContractLogicError

from agentmarket import _errors_generated as generated
from agentmarket import errorgen, errors


def test_the_committed_module_is_what_the_artifacts_produce():
    """The same check `agentmarket compile --check` makes (without recompiling)."""
    assert errorgen.check_module(errorgen.shipped_artifacts()) == []
    assert errorgen.MODULE_PATH.read_text() == errorgen.render_module(errorgen.shipped_artifacts())


def test_a_stale_module_is_reported(tmp_path):
    stale = tmp_path / "_errors_generated.py"
    stale.write_text(errorgen.render_module({}))
    assert errorgen.check_module(errorgen.shipped_artifacts(), stale)
    assert errorgen.check_module(errorgen.shipped_artifacts(), tmp_path / "missing.py")


def test_decoded_reverts_are_the_generated_classes_under_their_family():
    data = keccak(text="EscrowInvalidState(uint256,uint8)")[:4] + encode(["uint256", "uint8"], [7, 2])
    err = errors.decode_revert(data)
    assert type(err) is generated.EscrowInvalidState is errors.EscrowInvalidState
    assert isinstance(err, errors.EscrowRevert) and not isinstance(err, errors.OfferBookRevert)
    assert isinstance(err, errors.ContractRevert) and isinstance(err, ContractLogicError)
    assert err.dealId == 7 and err.arguments == {"dealId": 7, "state": 2}


def test_every_family_has_one_base_and_shared_errors_belong_to_each_family_that_raises_them():
    for family in generated.FAMILIES:
        assert family.__bases__ == (errors.ContractRevert,)
    assert issubclass(errors.OfferExpired, errors.OfferBookRevert)
    assert issubclass(errors.AuctionBidTooLow, errors.AuctionRevert)
    assert issubclass(errors.ChannelExpired, errors.ChannelRevert)
    assert issubclass(errors.CallBatchFull, errors.CallMarketRevert)
    assert issubclass(errors.ReputationAlreadyRated, errors.ReputationRevert)
    shared = errors.CreditsNothingToWithdraw
    assert issubclass(shared, errors.CreditsRevert) and issubclass(shared, errors.EscrowRevert)
    assert issubclass(shared, errors.ChannelRevert) and issubclass(shared, errors.AuctionRevert)
    assert errors.revert_class("EscrowInvalidState") is generated.EscrowInvalidState
    assert {c.error_name for c in generated.REVERTS} >= {"EscrowInvalidState", "OfferExpired"}

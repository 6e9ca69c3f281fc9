"""Domain types have one home and take their struct layouts from the shipped ABIs."""

from __future__ import annotations

import dataclasses

import pytest
from eth_utils import keccak

import agentmarket.agent
import agentmarket.clients.auctions
import agentmarket.clients.channels
import agentmarket.clients.offers
import agentmarket.market
import agentmarket.vouchers
from agentmarket import types
from agentmarket.compiler import load_artifact
from agentmarket.types.abi import StructSpec, bind, struct_spec
from agentmarket.units import WEI_PER_ETH


def test_one_resource_id_for_agents_offers_and_mandates():
    assert agentmarket.agent.resource_id is types.resource_id
    assert agentmarket.clients.offers.resource_id is types.resource_id
    name = keccak(text="gpu-hour")
    assert types.resource_id("gpu-hour") == name
    assert types.resource_id(b"gpu-hour") == name  # a name as bytes is the same name
    assert types.resource_id(name) == name  # an id stays itself
    assert types.resource_id("0x" + name.hex()) == name
    with pytest.raises(TypeError):
        types.resource_id(7)  # type: ignore[arg-type]


def test_eth_is_an_address_and_wei_per_eth_an_amount():
    assert types.ETH == "0x" + "00" * 20
    assert WEI_PER_ETH == 10**18
    assert agentmarket.market.ETHER == WEI_PER_ETH  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "cls, spec, artifact, struct",
    [
        (types.DealTerms, types.DEAL_STRUCT, "AgentEscrow", "Deal"),
        (types.DealTemplate, types.TEMPLATE_STRUCT, "EnglishAuction", "DealTemplate"),
        (types.Offer, types.OFFER_SPEC, "OfferBook", "Offer"),
    ],
)
def test_struct_layouts_come_from_the_abi(cls, spec, artifact, struct):
    """Field names, order and types are the compiler's, and the dataclass mirrors them."""
    assert spec == struct_spec(artifact, struct)
    abi = load_artifact(artifact)["abi"]
    ours = [(f.sol, f.abi_type) for f in spec.fields]
    found = []
    for entry in abi:
        for param in entry.get("inputs", []) + entry.get("outputs", []):
            if param.get("internalType", "").split(".")[-1] in (f"struct {struct}", struct):
                found.append([(c["name"], c["type"]) for c in param["components"]])
    assert found and all(f == ours for f in found if not any(t.startswith("tuple") for _, t in f))
    assert {f.name for f in dataclasses.fields(cls)} == set(spec.names)


def test_a_dataclass_that_drifts_from_its_struct_does_not_import():
    @dataclasses.dataclass
    class Stale:
        buyer: str

    with pytest.raises(TypeError, match="missing"):
        bind(Stale, types.DEAL_STRUCT)
    with pytest.raises(LookupError):
        struct_spec("AgentEscrow", "NoSuchStruct")


def test_channel_key_follows_the_abi():
    spec: StructSpec = types.CHANNEL_KEY_STRUCT
    assert spec.names == ("payer", "payee", "asset", "salt")
    ch = types.Channel(b"\x01" * 32, "0xA", "0xB", types.ETH, 5, 10, 0, 99, types.ChannelStatus.OPEN)
    assert ch.key == ("0xA", "0xB", types.ETH, 5)


def test_old_import_paths_name_the_same_classes():
    assert agentmarket.clients.offers.Offer is types.Offer
    assert agentmarket.clients.auctions.DealTemplate is types.DealTemplate
    assert agentmarket.clients.auctions.Auction is types.Auction
    assert agentmarket.clients.channels.Channel is types.Channel
    assert agentmarket.vouchers.Voucher is types.Voucher


def test_voucher_typehashes_equal_the_contracts(chain, suite):
    """Vouchers are EIP-712 structs, not ABI structs: their field lists are checked against the typehashes
    the PaymentChannels contract exposes."""
    pc = suite["PaymentChannels"]
    assert bytes(pc.functions.VOUCHER_TYPEHASH().call()) == agentmarket.vouchers.VOUCHER_TYPEHASH
    assert bytes(pc.functions.CLOSE_TYPEHASH().call()) == agentmarket.vouchers.CLOSE_TYPEHASH

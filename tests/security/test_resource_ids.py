"""A seller cannot slip past a buyer's price band by spelling the resource differently.

v1 derived resource ids twice: the agent (mandate bands) hashed a name given as bytes, the offers client
zero-padded it. A seller naming its offer's resource ``b"gpu-hour"`` got an id that matched no band keyed
by ``resource_id("gpu-hour")``, and the buyer's agent paid any price. Now both call sites use
``agentmarket.types.resource_id``.
"""

from __future__ import annotations

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import MandateViolation
from agentmarket.mandate import Mandate, PriceBand
from agentmarket.market import Market
from agentmarket.types import resource_id

FINNEY = 10**15


@pytest.mark.parametrize("spelling", ["gpu-hour", b"gpu-hour", "0x" + resource_id("gpu-hour").hex()])
def test_a_band_keyed_by_a_name_binds_however_the_seller_spells_the_resource(
    chain: Chain, suite: Suite, spelling: str | bytes
) -> None:
    market = Market(chain, suite)
    gpu = resource_id("gpu-hour")
    buyer = market.agent("buyer", fund=10**17, mandate=Mandate(price_bands={gpu: PriceBand(FINNEY, 1_000)}))
    seller = market.agent("seller", fund=10**17)
    signed = seller.offers.offer("sell", spelling, 5 * FINNEY, 1)  # 5x the band's reference price
    assert signed.offer.resource_id == gpu
    block, nonce = chain.w3.eth.block_number, buyer.nonce
    with pytest.raises(MandateViolation, match="band ceiling"):
        buyer.fill(signed)
    assert (chain.w3.eth.block_number, buyer.nonce) == (block, nonce)  # nothing was sent
    assert buyer.guard.spent() == 0

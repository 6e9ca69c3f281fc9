"""Sends, receipts and decoded events go through ``logging`` at DEBUG; key material never does."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.market import Market
from agentmarket.types import content_hash

FINNEY = 10**15


def test_a_trade_logs_its_sends_receipts_and_events_without_keys(
    chain: Chain, suite: Suite, caplog: pytest.LogCaptureFixture
) -> None:
    market = Market(chain, suite)
    buyer = market.agent("buyer", fund=10**17)
    seller = market.agent("seller", fund=10**17)
    with caplog.at_level(logging.DEBUG, logger="agentmarket"):
        deal = buyer.buy(seller, 2 * FINNEY, deliver_by=timedelta(hours=1))
        deal = seller.escrow.submit(deal, content_hash("weights.bin"))
        receipt_hash = seller.escrow.last_receipt["transactionHash"].to_0x_hex()
        channel = buyer.channels.open(seller.address, FINNEY, ttl=3600)
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "agentmarket.tx sent " in text and "(key escrow.fund_eth)" in text
    assert "(key escrow.submit)" in text and "(key channel.open_eth)" in text
    assert f"agentmarket.tx mined {receipt_hash}" in text
    assert f"agentmarket.clients.base EscrowClient {receipt_hash}: DeliverableSubmitted" in text
    assert "EscrowClient" in text and "DealCreated" in text
    assert "ChannelClient" in text and "ChannelOpened" in text and "0x" + channel.id.hex() in text
    for agent in (buyer, seller):
        key = bytes(agent.account.key)
        for form in (key.hex(), "0x" + key.hex(), repr(key)):
            assert form not in text
        for record in caplog.records:
            assert key not in [a for a in (record.args or ()) if isinstance(a, bytes)]

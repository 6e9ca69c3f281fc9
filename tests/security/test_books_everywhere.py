"""Per-asset books in every contract that holds coins (issue 12, point 6: "no token behaviour moves one
user's loss onto another"). The escrow kept books (locked + credits + fees) and paid held / owed of every
claim while short; the auctions and the payment channels kept none, so after a -10% rebase the first to
withdraw was paid in full and the last bore the whole loss, and new money kept arriving into the deficit.
They now share the escrow's books, deficit check and share (contracts/libraries/Credits.sol). Rows of
docs/tokens.md ("rebasing down", "rebasing up"). Embedded chain."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import deploy, mint, send, token_sale_template

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.auctions import AuctionClient
from agentmarket.clients.callmarket import CallMarketClient
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite

E = errors.revert_class
TOKEN = 10**18
HOUR = 3600


def _balance(token: Any, account: Any) -> int:
    return int(token.functions.balanceOf(account.address).call())


def _cash_out(chain: Chain, contract: Any, token: Any, account: Any) -> int:
    """What `account` ends up holding after taking any credit it has in `contract` (this token rounds a
    transfer up by a wei, so a measured push may have been credited instead)."""
    if contract.functions.creditOf(account.address, token.address).call():
        send(chain, account, contract.functions.withdraw(token.address))
    return _balance(token, account)


def _english_with_two_outbid(chain: Chain, suite: Suite) -> tuple[Any, Any, list[Any], Any]:
    """Two English sales in a RebasingToken; in each, a bidder of 100 is outbid by a whale at 200: two equal
    credits of 100 (plus the whale's bids and the bonds, all held by the auction)."""
    a = chain.accounts
    seller, x1, x2, whale, arbiter = a[1], a[2], a[3], a[4], a[5]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [seller, x1, x2, whale], 1000 * TOKEN)
    client = AuctionClient.from_suite(suite, seller)
    terms = token_sale_template(seller, token, arbiter)
    for bidder in (x1, x2):
        now = client.now()
        sale = client.create_english(
            terms, reserve=TOKEN, start_time=now + 5, end_time=now + 5 + HOUR, approve=True
        )
        chain.travel_to(sale.start_time)
        client.as_(bidder).bid(sale, 100 * TOKEN, approve=True)
        client.as_(whale).bid(sale, 200 * TOKEN, approve=True)
    english = suite["EnglishAuction"]
    for bidder in (x1, x2):
        assert english.functions.creditOf(bidder.address, token.address).call() == 100 * TOKEN
    return english, token, [x1, x2], whale


def test_english_outbid_credits_share_a_rebase_down_pro_rata(chain: Chain, suite: Suite) -> None:
    """v1: the first outbid bidder to withdraw after a -10% rebase took 100 of its 100 (the auction still
    held the whale's bids), leaving the shortfall on whoever is paid last. Now each claim gets held / owed."""
    english, token, (x1, x2), _ = _english_with_two_outbid(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    before = [_balance(token, x) for x in (x1, x2)]
    got = [_cash_out(chain, english, token, x) - b for x, b in zip((x1, x2), before, strict=True)]
    # 90 each (a few wei of rounding aside), not 100 to the first
    for g in got:
        assert 90 * TOKEN - 10 <= g <= 90 * TOKEN, got
    assert abs(got[0] - got[1]) <= 10, got


def test_english_bid_in_deficit_is_refused(chain: Chain, suite: Suite) -> None:
    """A new bid in an asset the auction holds less of than its books would pay the old holders' loss."""
    english, token, _, whale = _english_with_two_outbid(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    sale_id = english.functions.nextAuctionId().call() - 1
    send(chain, whale, token.functions.approve(english.address, 300 * TOKEN))
    with pytest.raises(E("AssetDeficit")) as info:
        send(chain, whale, english.functions.bid(sale_id, 250 * TOKEN))
    args = info.value.arguments
    assert args["asset"] == token.address and args["balance"] < args["owed"]
    assert isinstance(info.value, errors.AgentMarketError)


def test_sealed_commit_in_deficit_is_refused(chain: Chain, suite: Suite) -> None:
    """The same check guards every auction's deposits (AuctionBase._receive): a sealed commit."""
    a = chain.accounts
    seller, bidder, late, arbiter = a[1], a[2], a[3], a[5]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [seller, bidder, late], 1000 * TOKEN)
    client = AuctionClient.from_suite(suite, seller)
    now = client.now()
    sale = client.create_sealed(
        token_sale_template(seller, token, arbiter),
        reserve=TOKEN,
        commit_end=now + HOUR,
        reveal_end=now + 2 * HOUR,
        approve=True,
    )
    client.as_(bidder).commit(sale, 10 * TOKEN, deposit=10 * TOKEN, approve=True)
    send(chain, a[0], token.functions.rebase(9000))
    sealed = suite["SealedBidAuction"]
    send(chain, late, token.functions.approve(sealed.address, 10 * TOKEN))
    with pytest.raises(E("AssetDeficit")):
        send(chain, late, sealed.functions.commit(sale.id, b"\x07" * 32, 10 * TOKEN))
    assert _balance(token, late) == 900 * TOKEN  # nothing was taken


def _two_channels(chain: Chain, suite: Suite) -> tuple[Any, Any, ChannelClient, list[Any], list[Any]]:
    a = chain.accounts
    payee, p1, p2 = a[1], a[2], a[3]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [p1, p2], 1000 * TOKEN)
    client = ChannelClient.from_suite(suite, p1)
    channels = [
        client.as_(p).open(payee.address, 100 * TOKEN, ttl=HOUR, salt=i, asset=token.address, approve=True)
        for i, p in enumerate((p1, p2))
    ]
    return suite["PaymentChannels"], token, client, [p1, p2], channels


def _reclaim_both(
    chain: Chain, pc: Any, token: Any, client: ChannelClient, payers: list[Any], chans: list[Any]
) -> list[int]:
    chain.advance_time(2 * HOUR)
    got = []
    for payer, ch in zip(payers, chans, strict=True):
        before = _balance(token, payer)
        client.as_(payer).reclaim(ch)
        got.append(_cash_out(chain, pc, token, payer) - before)
    return got


def test_channel_refunds_share_a_rebase_down_pro_rata(chain: Chain, suite: Suite) -> None:
    """v1: two channels of 100 in a token that rebases -10%: the first payer to reclaim took 100, the second
    80. Now each takes ~90."""
    pc, token, client, payers, chans = _two_channels(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    got = _reclaim_both(chain, pc, token, client, payers, chans)
    for g in got:
        assert 90 * TOKEN - 10 <= g <= 90 * TOKEN, got
    assert _balance(token, pc) <= 10  # nothing stranded but rounding dust


def test_channel_open_in_deficit_is_refused(chain: Chain, suite: Suite) -> None:
    pc, token, client, (p1, _), _ = _two_channels(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    key = (p1.address, chain.accounts[4].address, token.address, 7)
    send(chain, p1, token.functions.approve(pc.address, 10 * TOKEN))
    with pytest.raises(E("AssetDeficit")):
        send(chain, p1, pc.functions.open(key, 10 * TOKEN, client.now() + HOUR))


def test_channel_refunds_share_a_rebase_up_pro_rata(chain: Chain, suite: Suite) -> None:
    """Rebasing up (docs/tokens.md): the surplus belongs to the positions that held the token when it grew,
    pro rata, as a loss does; nothing strands in the contract."""
    pc, token, client, payers, chans = _two_channels(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(11000))
    got = _reclaim_both(chain, pc, token, client, payers, chans)
    for g in got:
        assert 110 * TOKEN - 10 <= g <= 110 * TOKEN, got
    assert _balance(token, pc) <= 10


def test_english_credits_share_a_rebase_up_pro_rata(chain: Chain, suite: Suite) -> None:
    english, token, (x1, x2), _ = _english_with_two_outbid(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(11000))
    before = [_balance(token, x) for x in (x1, x2)]
    got = [_cash_out(chain, english, token, x) - b for x, b in zip((x1, x2), before, strict=True)]
    for g in got:
        assert 110 * TOKEN - 10 <= g <= 110 * TOKEN, got


def _call_market_with_two_makers(chain: Chain, suite: Suite) -> tuple[Any, Any, CallMarketClient, list[Any]]:
    """Two makers with 100 each of a RebasingToken at the call market: one bid's lock, one deposit."""
    a = chain.accounts
    m1, m2 = a[2], a[3]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [m1, m2], 1000 * TOKEN)
    cm = CallMarketClient(chain, suite["CallMarket"], a[1])
    cm.as_(m1).deposit(100 * TOKEN, token.address, approve=True)
    cm.as_(m2).deposit(100 * TOKEN, token.address, approve=True)
    return suite["CallMarket"], token, cm, [m1, m2]


def test_call_market_credits_share_a_rebase_down_pro_rata(chain: Chain, suite: Suite) -> None:
    """v1: after a -10% rebase the first maker to withdraw took its 100, the second could take 80 at most."""
    market, token, cm, makers = _call_market_with_two_makers(chain, suite)
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    got = []
    for m in makers:
        before = _balance(token, m)
        cm.as_(m).withdraw(token.address)
        got.append(_cash_out(chain, market, token, m) - before)
    for g in got:
        assert 90 * TOKEN - 10 <= g <= 90 * TOKEN, got
    assert _balance(token, market) <= 10


def test_call_market_order_in_deficit_is_refused(chain: Chain, suite: Suite) -> None:
    """A new order (or deposit) that needs a pull is refused while the market is short of the token."""
    market, token, cm, (m1, _) = _call_market_with_two_makers(chain, suite)
    batch = cm.open_batch(
        "gpu-hour/h100", closes_in=100, settle_window=HOUR, tick_exp=12, asset=token.address
    )
    send(chain, chain.accounts[0], token.functions.rebase(9000))
    late = chain.accounts[4]
    mint(chain, token, [late], 10 * TOKEN)
    send(chain, late, token.functions.approve(market.address, 10 * TOKEN))
    with pytest.raises(E("AssetDeficit")):
        send(chain, late, market.functions.submitBid(batch.id, 100, 1))
    with pytest.raises(E("AssetDeficit")):
        send(chain, late, market.functions.deposit(token.address, TOKEN))
    # a maker's own credit still pays its order: no coin arrives, nobody else's loss moves
    assert cm.as_(m1).submit_bid(batch, 100, 1).id == 0

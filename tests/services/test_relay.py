"""The offer relay end to end: real relay processes (uvicorn on 127.0.0.1), a real database (SQLite file and
PostgreSQL, one leg each), a real anvil. Every refused request is checked to change nothing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from eth_account import Account
from helpers import deploy
from relaytest import wait_for

from agentmarket.chain import Chain
from agentmarket.clients.offers import Offer, OffersClient, SignedOffer, resource_id
from agentmarket.deploy import Suite
from agentmarket.relay import AsyncRelayClient, RelayClient, RelayNotFound, RelayRejected
from agentmarket.relay.db import open_db
from agentmarket.relay.process import RelayProcess
from agentmarket.relay.store import Filters, Store, offer_row

pytestmark = pytest.mark.anvil

PRICE = 10**15
MAKER_RATE = ["--maker-rate", "2", "--client-rate", "0"]  # burst of 10 posts per maker


@pytest.fixture(scope="module")
def relay(spawn: Callable[..., RelayProcess], new_db: Callable[[], str]) -> RelayProcess:
    return spawn(new_db(), *MAKER_RATE)


@pytest.fixture(scope="module")
def rc(relay: RelayProcess) -> RelayClient:
    return RelayClient(relay.url)


@pytest.fixture(scope="module")
def book(market: tuple[Chain, Suite]) -> OffersClient:
    _chain, suite = market
    return OffersClient.from_suite(suite)


def fresh_offer(book: OffersClient, *, resource: str = "gpu-hour", price: int = PRICE, quantity: int = 4,
                key: Any = None, **terms: Any) -> tuple[SignedOffer, Any]:  # fmt: skip
    """A signed sell offer by a fresh (unfunded) maker: signing costs nothing on chain."""
    key = key or Account.create()
    offer = book.build(
        "sell", resource, price, quantity, maker=key.address, counter=terms.pop("counter", 0), **terms
    )
    return book.sign(offer, key=key), key


def funded_maker(market: tuple[Chain, Suite], index: int) -> OffersClient:
    chain, suite = market
    return OffersClient.from_suite(suite, chain.accounts[index])


def snapshot_of(rc: RelayClient) -> tuple[int, int]:
    """(last change seq, offers in the whole book incl. dead): equal before and after a refused request."""
    total, cursor = 0, None
    while True:
        page = rc.query(include_dead=True, limit=500, cursor=cursor)
        total += len(page.offers)
        cursor = page.next
        if cursor is None:
            return int(rc.health()["last_seq"]), total


# -- happy path ----------------------------------------------------------------------------------------


def test_post_is_durable_idempotent_and_readable(rc: RelayClient, book: OffersClient) -> None:
    signed, _ = fresh_offer(book, resource="roundtrip")
    first = rc.post(signed)
    assert first.created and first.hash == "0x" + signed.hash.hex()
    again = rc.post(signed)  # same offer again: 200, nothing new
    assert not again.created
    got = rc.get(signed.hash)
    assert got.signed == signed and got.remaining == 4 and got.status == "live"
    page = rc.query(resource="roundtrip", side="sell")
    assert [o.signed for o in page.offers] == [signed]


def test_query_filters_sort_and_pagination(rc: RelayClient, book: OffersClient) -> None:
    posted = []
    for i, (price, qty, delivery) in enumerate(
        [(5, 1, 60), (3, 9, 600), (9, 4, 60), (1, 2, 7200), (7, 6, 60), (3, 3, 60)]
    ):
        signed, _ = fresh_offer(
            book, resource="filters", price=price * PRICE, quantity=qty, delivery=delivery, salt=i
        )
        rc.post(signed)
        posted.append(signed)
    prices = [o.offer.unit_price for o in rc.query(resource="filters").offers]
    assert prices == sorted(p.offer.unit_price for p in posted)
    desc = [o.offer.unit_price for o in rc.query(resource="filters", sort="price_desc").offers]
    assert desc == sorted(prices, reverse=True)
    band = rc.query(
        resource="filters", min_price=3 * PRICE, max_price=7 * PRICE, min_remaining=3, max_delivery=600
    )
    assert sorted((o.offer.unit_price // PRICE, o.remaining) for o in band.offers) == [(3, 3), (3, 9), (7, 6)]
    walked, cursor = [], None
    while True:
        page = rc.query(resource="filters", limit=2, cursor=cursor)
        walked += [o.signed for o in page.offers]
        cursor = page.next
        if cursor is None:
            break
    assert walked == [o.signed for o in rc.query(resource="filters").offers] and len(walked) == 6
    assert rc.query(resource="filters", min_ratings=1).offers == []  # nobody here has been rated
    assert rc.query(resource="filters", side="buy").offers == []


# -- bad input: each gets its 4xx and changes nothing --------------------------------------------------


def _sig_by_other(book: OffersClient) -> bytes:
    signed, _ = fresh_offer(book, resource="bad")
    return signed.to_json().replace(signed.signature.hex(), fresh_offer(book)[0].signature.hex()).encode()


def _domain_variant(book: OffersClient, **change: Any) -> bytes:
    key = Account.create()
    offer = book.build("sell", "bad", PRICE, 2, maker=key.address, counter=0)
    domain = replace(book.domain, **change)
    from agentmarket.eip712 import sign_digest

    return SignedOffer(offer, sign_digest(key, offer.digest(domain)), domain).to_json().encode()


def _wrong_type(book: OffersClient) -> bytes:
    body = json.loads(fresh_offer(book, resource="bad")[0].to_json())
    body["offer"]["unitPrice"] = [1, 2]
    return json.dumps(body).encode()


def _not_a_number(book: OffersClient) -> bytes:
    body = json.loads(fresh_offer(book, resource="bad")[0].to_json())
    body["offer"]["quantity"] = "lots"
    return json.dumps(body).encode()


def _wrong_hash(book: OffersClient) -> bytes:
    body = json.loads(fresh_offer(book, resource="bad")[0].to_json())
    body["hash"] = "0x" + "11" * 32
    return json.dumps(body).encode()


def _expired(book: OffersClient) -> bytes:
    now = book.chain.now()
    return fresh_offer(book, resource="bad", expiry=now - 100)[0].to_json().encode()


def _stale_counter(book: OffersClient) -> bytes:
    return fresh_offer(book, resource="bad", counter=3)[0].to_json().encode()


def _zero_quantity(book: OffersClient) -> bytes:
    key = Account.create()
    offer = Offer(
        maker=key.address, side=0, resource_id=b"\x01" * 32, unit_price=PRICE, quantity=0, expiry=2**39
    )
    return book.sign(offer, key=key).to_json().encode()


BAD: dict[str, tuple[Callable[[OffersClient], bytes], int, str]] = {
    "malformed_json": (lambda b: b'{"offer": {"maker": ', 400, "malformed_json"),
    "not_an_object": (lambda b: b"[1, 2, 3]", 400, "malformed_offer"),
    "wrong_types": (_wrong_type, 400, "wrong_type"),
    "not_a_number": (_not_a_number, 400, "malformed_offer"),
    "hash_mismatch": (_wrong_hash, 400, "malformed_offer"),
    "wrong_signature": (_sig_by_other, 422, "bad_signature"),
    "another_chain_id": (lambda b: _domain_variant(b, chain_id=1), 422, "wrong_chain"),
    "another_offerbook": (
        lambda b: _domain_variant(b, verifying_contract="0x" + "ab" * 20),
        422,
        "wrong_offerbook",
    ),
    "expired": (_expired, 422, "expired"),
    "stale_counter": (_stale_counter, 409, "stale_counter"),
    "invalid_terms": (_zero_quantity, 422, "invalid_terms"),
    "oversize_body": (lambda b: b'{"offer": "' + b"x" * 40_000 + b'"}', 413, "too_large"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_and_changes_nothing(
    case: str, rc: RelayClient, relay: RelayProcess, book: OffersClient
) -> None:
    make, status, code = BAD[case]
    body = make(book)
    before = snapshot_of(rc)
    r = httpx.post(relay.url + "/offers", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert r.json()["message"]
    assert snapshot_of(rc) == before


BAD_QUERIES = {
    "limit=lots": "query.limit",
    "min_price=1.5": "query.min_price",
    "include_dead=maybe": "query.include_dead",
    "min_reputation=high": "query.min_reputation",
    "min_price=-1": "min_price must be >= 0",
    "limit=0": "limit must be",
    "side=sideways": "side must be",
    "sort=random": "sort must be",
    "cursor=nonsense": "malformed cursor",
}


@pytest.mark.parametrize("query", sorted(BAD_QUERIES))
def test_bad_query_parameter_is_a_400_naming_it(query: str, relay: RelayProcess) -> None:
    r = httpx.get(f"{relay.url}/offers?resource=bad&{query}")
    assert (r.status_code, r.json()["error"]) == (400, "bad_parameter"), r.text
    assert BAD_QUERIES[query] in r.json()["message"]


def test_query_parameters_typed_like_the_client_sends_them(rc: RelayClient, book: OffersClient) -> None:
    signed, _ = fresh_offer(book, resource="typed", price=2 * PRICE, quantity=5)
    rc.post(signed)
    base = f"{rc.url}/offers?resource=typed&side=sell"
    for extra, found in [
        ("&min_price=2000000000000000&max_price=2000000000000000&min_remaining=5", True),
        ("&max_price=1999999999999999", False),
        ("&include_dead=true&limit=1&unknown=ignored", True),
        ("&min_remaining=6", False),
        ("&limit=0&limit=7", True),  # repeated: the last one counts (limit=0 alone is a 400)
    ]:
        r = httpx.get(base + extra)
        assert r.status_code == 200, r.text
        assert [o["hash"] for o in r.json()["offers"]] == (["0x" + signed.hash.hex()] if found else [])


def test_flood_from_one_maker_is_throttled(rc: RelayClient, book: OffersClient) -> None:
    key = Account.create()
    created, limited = [], 0
    started = time.monotonic()
    for i in range(30):
        signed, _ = fresh_offer(book, resource="flood", key=key, salt=i)
        try:
            rc.post(signed)
            created.append(signed.hash)
        except RelayRejected:
            raise
        except Exception as exc:
            assert getattr(exc, "status", None) == 429 and exc.code == "maker_rate_limited"  # type: ignore[attr-defined]
            limited += 1
    # a burst of 10, then 2 posts/s refill while the flood lasts (a loaded machine makes it last longer)
    allowed = 10 + 2 * (time.monotonic() - started)
    assert limited >= 30 - allowed - 1 and 5 <= len(created) <= allowed + 1
    stored = rc.query(resource="flood", limit=500).offers
    assert sorted(o.hash for o in stored) == sorted(created)  # only the accepted ones
    # another maker is not affected by the flood
    assert rc.post(fresh_offer(book, resource="flood")[0]).created


def test_forged_signatures_do_not_spend_a_makers_budget(
    rc: RelayClient, relay: RelayProcess, book: OffersClient
) -> None:
    victim = Account.create()
    for i in range(20):  # forged posts in the victim's name: refused, and they cost the victim nothing
        signed, _ = fresh_offer(book, resource="victim", key=victim, salt=i)
        forged = signed.to_json().replace(signed.signature.hex(), fresh_offer(book)[0].signature.hex())
        r = httpx.post(relay.url + "/offers", content=forged, headers={"content-type": "application/json"})
        assert r.status_code == 422
    assert rc.post(fresh_offer(book, resource="victim", key=victim, salt=99)[0]).created


# -- signatures: ERC-1271 makers, maker-signed cancel ---------------------------------------------------


def test_erc1271_maker_through_eth_call(
    rc: RelayClient, market: tuple[Chain, Suite], book: OffersClient
) -> None:
    chain, _ = market
    owner = chain.accounts[6]
    approving = deploy(chain, "MockERC1271Wallet", owner.address, True)
    refusing = deploy(chain, "MockERC1271Wallet", owner.address, False)
    ok = book.sign(book.build("sell", "wallets", PRICE, 2, maker=approving.address), key=owner)
    assert rc.post(ok).created
    bad = book.sign(book.build("sell", "wallets", PRICE, 2, maker=refusing.address), key=owner)
    before = snapshot_of(rc)
    with pytest.raises(RelayRejected) as info:
        rc.post(bad)
    assert info.value.code == "bad_signature" and snapshot_of(rc) == before


def test_only_the_maker_can_withdraw_an_offer(
    rc: RelayClient, relay: RelayProcess, book: OffersClient
) -> None:
    signed, key = fresh_offer(book, resource="withdraw")
    rc.post(signed)
    before = snapshot_of(rc)
    with pytest.raises(RelayRejected) as info:
        rc.cancel(signed, Account.create())  # someone else's signature
    assert info.value.status == 403 and snapshot_of(rc) == before
    r = httpx.post(f"{relay.url}/offers/0x{signed.hash.hex()}/cancel", content=b"{bad")
    assert r.status_code == 400
    rc.cancel(signed, key)
    assert rc.get(signed.hash).status == "withdrawn"
    assert rc.query(resource="withdraw").offers == []
    with pytest.raises(RelayRejected) as info:  # nobody can bring it back by re-posting
        rc.post(signed)
    assert info.value.code == "withdrawn"
    with pytest.raises(RelayNotFound):
        rc.get("0x" + "22" * 32)


# -- the indexer ----------------------------------------------------------------------------------------


def test_fills_cancels_and_counter_bumps_update_the_book(
    rc: RelayClient, market: tuple[Chain, Suite]
) -> None:
    maker = funded_maker(market, 1)
    buyer = funded_maker(market, 2)
    a = maker.offer("sell", "indexed", PRICE, 5, salt=1)
    b = maker.offer("sell", "indexed", 2 * PRICE, 5, salt=2)
    for s in (a, b):
        rc.post(s)
    buyer.fill(a, 2)
    assert wait_for(lambda: rc.get(a.hash).remaining == 3, what="partial fill indexed")
    buyer.fill(a, 3)
    wait_for(lambda: rc.get(a.hash).status == "filled", what="full fill indexed")
    with pytest.raises(RelayRejected) as info:  # replay of a fully filled offer
        rc.post(a)
    assert info.value.code == "filled"
    maker.cancel(b)
    wait_for(lambda: rc.get(b.hash).status == "cancelled", what="cancel indexed")
    assert rc.query(resource="indexed").offers == []
    c = maker.offer("sell", "indexed", PRICE, 5, salt=3)
    rc.post(c)
    maker.cancel_all()
    wait_for(lambda: rc.get(c.hash).status == "voided", what="counter bump indexed")
    with pytest.raises(RelayRejected) as info:
        rc.post(c)
    assert info.value.code == "stale_counter"
    # an offer filled on chain that the relay never saw: its replay is refused too
    d = maker.offer("sell", "indexed", PRICE, 1, salt=4)
    buyer.fill(d, 1)
    wait_for(lambda: _refused(rc, d) == "filled", what="unknown filled offer refused")


def test_cancel_hides_every_offer_in_the_slot(rc: RelayClient, market: tuple[Chain, Suite]) -> None:
    """An on-chain cancel kills the maker's whole cancel slot of its counter (issue 12): the relay hides
    every offer in it, not only the digest the event names, refuses new posts into it, and keeps offers of
    other slots live."""
    maker = funded_maker(market, 6)
    maker.cancel_all()  # a fresh counter for this leg (the chain is shared by the SQLite and PostgreSQL legs)
    a = maker.offer("sell", "slots", PRICE, 5, salt=5)
    b = maker.sign(replace(a.offer, unit_price=2 * PRICE, salt=5 + 128))  # same slot, other terms
    c = maker.offer("sell", "slots", PRICE, 5, salt=6)
    # the relay admits counter-1 offers once it indexed the bump (it waits for confirmations)
    wait_for(lambda: _refused(rc, a) is None, what="counter bump indexed")
    for s in (b, c):
        rc.post(s)
    maker.cancel(a)
    wait_for(lambda: rc.get(b.hash).status == "cancelled", what="slot cancel indexed")
    assert rc.get(a.hash).status == "cancelled" and rc.get(c.hash).status == "live"
    assert [o.signed for o in rc.query(resource="slots").offers] == [c]
    late = maker.sign(replace(a.offer, unit_price=3 * PRICE, salt=5 + 256))
    assert _refused(rc, late) == "cancelled"


def _refused(rc: RelayClient, signed: SignedOffer) -> str | None:
    try:
        rc.post(signed)
    except RelayRejected as exc:
        return exc.code
    return None


def test_reorg_is_rolled_back_without_corrupting_the_book(
    rc: RelayClient, relay: RelayProcess, market: tuple[Chain, Suite]
) -> None:
    chain, _ = market
    maker, buyer = funded_maker(market, 3), funded_maker(market, 4)
    s = maker.offer("sell", "reorg", PRICE, 4)
    rc.post(s)
    snap = chain.snapshot()
    buyer.fill(s, 3)
    wait_for(lambda: rc.get(s.hash).remaining == 1, what="fill indexed")
    reorgs = rc.health()["reorgs"]
    chain.revert(snap)  # the fill's block is gone ...
    chain.mine(3)  # ... and a longer chain without it replaces it
    wait_for(lambda: rc.health()["reorgs"] > reorgs, what="reorg detected")
    got = wait_for(lambda: (o := rc.get(s.hash)).remaining == 4 and o, what="fill rolled back")
    assert got.status == "live" and [o.hash for o in rc.query(resource="reorg").offers] == [s.hash]
    buyer.fill(s, 4)  # and the book follows the new chain
    wait_for(lambda: rc.get(s.hash).status == "filled", what="new fill indexed")


def test_stream_and_async_client(
    rc: RelayClient, relay: RelayProcess, book: OffersClient, market: tuple[Chain, Suite]
) -> None:
    since = int(rc.health()["last_seq"])
    seen: list[tuple[str, bytes, int]] = []

    def listen() -> None:
        for event in RelayClient(relay.url).stream(since=since, timeout=20):
            seen.append((event.kind, event.offer.hash, event.offer.remaining))
            if len(seen) >= 2:
                return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    maker, buyer = funded_maker(market, 5), funded_maker(market, 2)

    async def go() -> None:
        async with AsyncRelayClient(relay.url) as arc:
            signed = maker.offer("sell", "streamed", PRICE, 3)
            assert (await arc.post(signed)).created
            assert [o.hash for o in (await arc.query(resource="streamed")).offers] == [signed.hash]
            buyer.fill(signed, 1)
            t.join(timeout=20)
            assert seen == [("posted", signed.hash, 3), ("filled", signed.hash, 2)]
            assert (await arc.get(signed.hash)).remaining == 2

    asyncio.run(go())


def test_buyer_flow_publish_query_fill(rc: RelayClient, market: tuple[Chain, Suite]) -> None:
    seller_a, seller_b, buyer = funded_maker(market, 7), funded_maker(market, 8), funded_maker(market, 9)
    cheap = seller_a.publish(seller_a.build("sell", "buyflow", 2 * PRICE, 2), relay=rc)
    dear = seller_b.publish(seller_b.build("sell", "buyflow", 3 * PRICE, 5), relay=rc.url)
    fill = buyer.fill_from_relay(rc, "buyflow", 2)  # takes the cheapest with 2 left
    assert fill.offer_hash == cheap.hash and fill.deal.amount == 4 * PRICE
    wait_for(lambda: rc.get(cheap.hash).status == "filled", what="fill indexed")
    fill = buyer.fill_from_relay(rc, "buyflow", 3, max_price=3 * PRICE)
    assert fill.offer_hash == dear.hash
    with pytest.raises(RelayNotFound):
        buyer.fill_from_relay(rc, "buyflow", 1, max_price=PRICE)


def test_batch_post_answers_each_item_as_if_posted_alone(
    rc: RelayClient, relay: RelayProcess, book: OffersClient
) -> None:
    good = [fresh_offer(book, resource="batch", salt=i)[0] for i in range(3)]
    expired = fresh_offer(book, resource="batch", expiry=book.chain.now() - 100)[0]
    results = rc.post_many([good[0], expired, good[1], good[0], good[2]])
    assert [getattr(r, "created", None) for r in results] == [True, None, True, False, True]
    assert isinstance(results[1], RelayRejected) and results[1].code == "expired"
    assert sorted(o.hash for o in rc.query(resource="batch").offers) == sorted(g.hash for g in good)
    r = httpx.post(relay.url + "/offers/batch", json={"offers": []})
    assert (r.status_code, r.json()["error"]) == (400, "malformed_batch")


def test_bulk_import_is_queryable_and_leaves_the_tables_analyzed(
    new_db: Callable[[], str], book: OffersClient
) -> None:
    store = Store(open_db(new_db()))
    try:
        signed = [fresh_offer(book, resource="import", salt=i)[0] for i in range(7)]
        rows = [offer_row(s, filled=0, cancelled=False, posted_by="import") for s in signed]
        assert store.import_offers(iter(rows), chunk=3) == 7
        assert store.import_offers(rows[:2]) == 0  # already there: nothing new
        page, _ = store.query(Filters(resource_id="0x" + resource_id("import").hex(), now=book.chain.now()))
        assert sorted(o["hash"] for o in page) == sorted("0x" + s.hash.hex() for s in signed)
        with store.engine.connect() as conn:
            if store.engine.dialect.name == "postgresql":
                vacuumed, analyzed = conn.exec_driver_sql(
                    "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = 'offers'"
                ).one()
                assert vacuumed is not None and analyzed is not None
            else:
                assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
    finally:
        store.engine.dispose()

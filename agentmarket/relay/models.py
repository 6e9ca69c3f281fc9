"""The relay's tables (SQLAlchemy 2 Core, one schema for SQLite and PostgreSQL; alembic owns the DDL).

Amounts: ``unit_price`` is a uint128, wider than any SQL integer both engines share, so it is stored as a
39-digit zero-padded decimal string (``price_key``): string order is numeric order, exact on both engines.
Quantities are uint64 on chain; the relay accepts up to 2**63 - 1 so they fit ``BIGINT``.

State the indexer derives from the chain is kept twice on purpose: the raw events (``chain_events``, the
source of truth, cut back on a reorg) and the denormalised columns of ``offers`` (``filled``, ``remaining``,
``cancelled``, ``voided``, ``live``) that queries filter on; a rollback recomputes the latter from the former
in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

PRICE_DIGITS = 39  # len(str(2**128 - 1))
MAX_QUANTITY = 2**63 - 1

offers = Table(
    "offers",
    metadata,
    Column("hash", String(66), primary_key=True),  # EIP-712 digest, 0x-hex lower case
    Column("maker", String(42), nullable=False),
    Column("side", SmallInteger, nullable=False),
    Column("resource_id", String(66), nullable=False),
    Column("asset", String(42), nullable=False),
    Column("price_key", String(PRICE_DIGITS), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("filled", BigInteger, nullable=False, default=0),
    Column("remaining", BigInteger, nullable=False),
    Column("delivery_seconds", BigInteger, nullable=False),
    Column("expiry", BigInteger, nullable=False),
    Column("counter", BigInteger, nullable=False),
    Column("slot", SmallInteger, nullable=False),  # cancel slot: salt % 128 (0003)
    Column(
        "cancelled", Boolean, nullable=False, default=False
    ),  # its (maker, counter, slot) cancelled on chain
    Column("withdrawn", Boolean, nullable=False, default=False),  # maker-signed cancel message
    Column("voided", Boolean, nullable=False, default=False),  # the maker's counter moved past it
    Column("live", Boolean, nullable=False, default=True),
    Column("body", Text, nullable=False),  # the signed offer JSON as posted (canonical re-encoding)
    Column("posted_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_offers_book", offers.c.resource_id, offers.c.side, offers.c.live, offers.c.price_key, offers.c.hash)
Index("ix_offers_side_price", offers.c.side, offers.c.live, offers.c.price_key, offers.c.hash)  # 0002
Index("ix_offers_maker", offers.c.maker)
Index("ix_offers_maker_slot", offers.c.maker, offers.c.counter, offers.c.slot)  # 0003

chain_events = Table(
    "chain_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("block", BigInteger, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # filled | cancelled | counter | rated
    Column("offer_hash", String(66), nullable=True),
    Column("account", String(42), nullable=True),  # maker (counter, cancelled) or ratee (rated)
    Column("asset", String(42), nullable=True),  # rated: the asset of the rating
    Column(
        "value", BigInteger, nullable=True
    ),  # filled: total after; counter: the new one; cancelled: its counter
    Column(
        "slot", SmallInteger, nullable=True
    ),  # cancelled: the cancel slot (NULL: indexed before 0003) (0003)
)
Index("ix_chain_events_block", chain_events.c.block)
Index("ix_chain_events_offer", chain_events.c.offer_hash)
Index("ix_chain_events_account", chain_events.c.account)

makers = Table(
    "makers",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("counter", BigInteger, nullable=False, default=0),
)

reputation = Table(
    "reputation",
    metadata,
    Column("maker", String(42), primary_key=True),
    Column("asset", String(42), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("score", Float, nullable=True),  # value-weighted average 0..100, NULL without ratings
)

blocks = Table(  # hashes of indexed blocks, to detect a reorg and find the common ancestor
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(66), nullable=False),
)

indexer_state = Table(
    "indexer_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("next_block", BigInteger, nullable=False),
    Column("chain_id", BigInteger, nullable=False),
    Column("offerbook", String(42), nullable=False),
)

changes = Table(  # the stream's log: one row per new or changed offer, in commit order
    "changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("offer_hash", String(66), nullable=False),
    Column("kind", String(16), nullable=False),  # posted | filled | cancelled | withdrawn | voided | restored
)


def price_key(unit_price: int) -> str:
    """The sortable, exact text form of a uint128 price."""
    return f"{int(unit_price):0{PRICE_DIGITS}d}"

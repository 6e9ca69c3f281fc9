"""Initial relay schema: offers, chain events, makers, reputation, block hashes, indexer state, changes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("hash", sa.String(66), primary_key=True),
        sa.Column("maker", sa.String(42), nullable=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("resource_id", sa.String(66), nullable=False),
        sa.Column("asset", sa.String(42), nullable=False),
        sa.Column("price_key", sa.String(39), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("filled", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("delivery_seconds", sa.BigInteger(), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("posted_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_offers_book", "offers", ["resource_id", "side", "live", "price_key", "hash"])
    op.create_index("ix_offers_maker", "offers", ["maker"])
    op.create_table(
        "chain_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("offer_hash", sa.String(66), nullable=True),
        sa.Column("account", sa.String(42), nullable=True),
        sa.Column("asset", sa.String(42), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_chain_events_block", "chain_events", ["block"])
    op.create_index("ix_chain_events_offer", "chain_events", ["offer_hash"])
    op.create_index("ix_chain_events_account", "chain_events", ["account"])
    op.create_table(
        "makers",
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("counter", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "reputation",
        sa.Column("maker", sa.String(42), primary_key=True),
        sa.Column("asset", sa.String(42), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
    )
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), primary_key=True),
        sa.Column("hash", sa.String(66), nullable=False),
    )
    op.create_table(
        "indexer_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("next_block", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("offerbook", sa.String(42), nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("offer_hash", sa.String(66), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    for table in ("changes", "indexer_state", "blocks", "reputation", "makers", "chain_events", "offers"):
        op.drop_table(table)

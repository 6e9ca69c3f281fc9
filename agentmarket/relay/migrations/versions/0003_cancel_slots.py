"""Cancel slots (issue 12): an on-chain ``cancel`` kills every offer of its maker with the same counter
and cancel slot (the low 7 bits of the salt), not one digest. ``offers.slot`` holds each offer's slot
(back-filled from the stored signed offer) and ``chain_events.slot`` the slot of a ``cancelled`` event
(whose ``account`` is the maker and ``value`` the counter), so the indexer hides every offer a cancel
kills. Cancel events indexed before this revision keep their slot NULL and still cancel their own digest.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CANCEL_SLOTS = (
    128  # OfferLib.CANCEL_SLOTS (fixed by the deployed contract: not imported, a migration is frozen)
)


def upgrade() -> None:
    op.add_column("offers", sa.Column("slot", sa.SmallInteger(), nullable=True))
    op.add_column("chain_events", sa.Column("slot", sa.SmallInteger(), nullable=True))
    conn = op.get_bind()
    offers = sa.table("offers", sa.column("hash", sa.String), sa.column("body", sa.Text), sa.column("slot"))
    for h, body in conn.execute(sa.select(offers.c.hash, offers.c.body)).all():
        slot = int(json.loads(body)["offer"]["salt"]) % CANCEL_SLOTS
        conn.execute(sa.update(offers).where(offers.c.hash == h).values(slot=slot))
    with op.batch_alter_table("offers") as batch:  # SQLite cannot ALTER COLUMN in place
        batch.alter_column("slot", existing_type=sa.SmallInteger(), nullable=False)
    op.create_index("ix_offers_maker_slot", "offers", ["maker", "counter", "slot"])


def downgrade() -> None:
    op.drop_index("ix_offers_maker_slot", table_name="offers")
    with op.batch_alter_table("chain_events") as batch:
        batch.drop_column("slot")
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("slot")

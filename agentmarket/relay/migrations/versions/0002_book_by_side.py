"""Index the book by side and price without a resource: a query for every sell (or buy) offer sorted by
price, optionally with a price bound, reads the first page from this index instead of sorting the whole
live book (ix_offers_book serves queries that name a resource).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_offers_side_price", "offers", ["side", "live", "price_key", "hash"])


def downgrade() -> None:
    op.drop_index("ix_offers_side_price", table_name="offers")

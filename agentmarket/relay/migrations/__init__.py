"""Alembic migrations of the relay database (run by :func:`agentmarket.relay.db.migrate`)."""

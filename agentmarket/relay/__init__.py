"""The offer relay: an HTTP service (FastAPI + uvicorn) where agents on many machines share signed offers,
backed by SQLite or PostgreSQL (SQLAlchemy 2 + alembic), kept current by an indexer of the OfferBook's
events. Run it with ``agentmarket relay``; talk to it with :class:`RelayClient` / :class:`AsyncRelayClient`.
See docs/relay.md."""

from .client import (
    AsyncRelayClient,
    Page,
    Posted,
    RelayClient,
    RelayOffer,
    StreamEvent,
    fill_from_relay,
    publish,
)
from .errors import RelayError, RelayNotFound, RelayRateLimited, RelayRejected, RelayUnavailable

__all__ = [
    "AsyncRelayClient",
    "Page",
    "Posted",
    "RelayClient",
    "RelayError",
    "RelayNotFound",
    "RelayOffer",
    "RelayRateLimited",
    "RelayRejected",
    "RelayUnavailable",
    "StreamEvent",
    "fill_from_relay",
    "publish",
]

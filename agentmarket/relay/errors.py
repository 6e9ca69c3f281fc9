"""Relay errors: one typed exception per HTTP outcome, shared by the service (to answer) and the client
(to raise what the service answered)."""

from __future__ import annotations

from ..errors import AgentMarketError


class RelayError(AgentMarketError):
    """The relay refused a request or could not be reached. ``status`` is the HTTP status (0: no answer),
    ``code`` a stable machine-readable reason (``bad_signature``, ``expired``, ...)."""

    status = 0
    code = "relay_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class RelayRejected(RelayError, ValueError):
    """A 4xx: the request is malformed, the offer invalid, or its state conflicts (filled, cancelled)."""

    status = 422
    code = "rejected"


class RelayRateLimited(RelayError):
    """A 429: too many requests from this client address or for this maker; retry after ``retry_after``."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str = "rate_limited"):
        super().__init__(message, status=429, code=code)
        self.retry_after = retry_after


class RelayNotFound(RelayError, LookupError):
    """A 404: no such offer."""

    status = 404
    code = "not_found"


class RelayUnavailable(RelayError):
    """No answer from the relay (connection refused, timeout) or a 5xx."""

    status = 0
    code = "unavailable"

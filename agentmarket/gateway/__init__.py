"""Pay-per-call HTTP on payment channels, in x402 v2's message shapes (see docs/gateway.md).

Seller: :class:`PaymentGateway` + :class:`PaymentMiddleware` (any ASGI app). Buyer: :class:`ChannelPayment`
(an httpx ``Auth``), :class:`PaidClient` / :class:`AsyncPaidClient`.
"""

from .client import AsyncPaidClient, ChannelPayment, PaidClient, PaymentDisputed, PaymentRefused
from .server import (
    UNITS_HEADER,
    Admission,
    Claimer,
    PaymentError,
    PaymentGateway,
    PaymentMiddleware,
    Price,
    report_units,
)
from .x402 import SCHEME, PaymentPayload, PaymentRequired, PaymentRequirements, SettlementResponse

__all__ = [
    "SCHEME",
    "UNITS_HEADER",
    "Admission",
    "AsyncPaidClient",
    "ChannelPayment",
    "Claimer",
    "PaidClient",
    "PaymentDisputed",
    "PaymentError",
    "PaymentGateway",
    "PaymentMiddleware",
    "PaymentPayload",
    "PaymentRefused",
    "PaymentRequired",
    "PaymentRequirements",
    "Price",
    "SettlementResponse",
    "report_units",
]

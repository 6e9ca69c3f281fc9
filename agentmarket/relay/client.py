"""Clients of the offer relay (httpx): :class:`RelayClient` (blocking) and :class:`AsyncRelayClient`
(asyncio), the same methods: ``post``, ``query``, ``get``, ``cancel``, ``stream``, ``health``.

Every refusal raises the typed error the relay answered (:mod:`agentmarket.relay.errors`); offers come back
as :class:`RelayOffer` carrying a :class:`~agentmarket.clients.offers.SignedOffer` ready for
``OffersClient.fill``. :func:`fill_from_relay` is the buyer's flow: query, pick, check on chain, fill.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..clients.offers import Fill, Offer, OffersClient, Side, SignedOffer
from ..errors import AgentMarketError
from .cancel import sign_cancel
from .errors import RelayError, RelayNotFound, RelayRateLimited, RelayRejected, RelayUnavailable


@dataclass(frozen=True)
class RelayOffer:
    """An offer as the relay knows it: the signed offer, its fill state and its maker's reputation."""

    signed: SignedOffer
    filled: int
    remaining: int
    status: str  # live | filled | cancelled | withdrawn | voided
    reputation_count: int = 0
    reputation_score: float | None = None

    @property
    def hash(self) -> bytes:
        return self.signed.hash

    @property
    def offer(self) -> Offer:
        return self.signed.offer

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RelayOffer:
        rep = value.get("reputation") or {}
        return cls(
            SignedOffer.from_dict(value["signed"]),
            int(value["filled"]),
            int(value["remaining"]),
            str(value["status"]),
            int(rep.get("count") or 0),
            rep.get("score"),
        )


@dataclass(frozen=True)
class Posted:
    """The relay's answer to a post: the offer hash and whether it was new (201) or known (200)."""

    hash: str
    created: bool


@dataclass(frozen=True)
class Page:
    """One page of a query; pass ``next`` as ``cursor`` for the following page (None: last page)."""

    offers: list[RelayOffer]
    next: str | None


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event: ``seq`` (resume with ``since=seq``), kind (posted, filled, ...), the offer."""

    seq: int
    kind: str
    offer: RelayOffer


def _error(response: httpx.Response) -> RelayError:
    try:
        body = response.json()
        code, message = str(body.get("error", "error")), str(body.get("message", response.text))
    except ValueError:
        code, message = "error", response.text[:200]
    status = response.status_code
    text = f"relay answered {status} {code}: {message}"
    if status == 429:
        return RelayRateLimited(text, retry_after=float(response.headers.get("retry-after", "1")), code=code)
    if status == 404:
        return RelayNotFound(text, status=404, code=code)
    if 400 <= status < 500:
        return RelayRejected(text, status=status, code=code)
    return RelayUnavailable(text, status=status, code=code)


def _item(r: Mapping[str, Any]) -> Posted | RelayError:
    status = int(r["status"])
    if status in (200, 201):
        return Posted(str(r["hash"]), status == 201)
    text = f"relay answered {status} {r.get('error')}: {r.get('message')}"
    if status == 429:
        return RelayRateLimited(text, code=str(r.get("error")))
    return RelayRejected(text, status=status, code=str(r.get("error")))


def _params(filters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, Side):
            value = value.name.lower()
        elif isinstance(value, bytes):
            value = "0x" + value.hex()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out


def _body(offer: SignedOffer | Mapping[str, Any] | str | bytes) -> bytes:
    if isinstance(offer, SignedOffer):
        return offer.to_json().encode()
    if isinstance(offer, (str, bytes)):
        return offer.encode() if isinstance(offer, str) else offer
    return json.dumps(dict(offer)).encode()


def _parse_sse(lines: Iterator[str]) -> Iterator[StreamEvent]:
    seq, kind, data = 0, "message", ""
    for line in lines:
        if line == "":
            if data:
                yield StreamEvent(seq, kind, RelayOffer.from_json(json.loads(data)))
            seq, kind, data = 0, "message", ""
        elif line.startswith(":"):
            continue
        elif line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


class RelayClient:
    """Blocking client of one relay (``url`` like ``http://127.0.0.1:8088``)."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self._http = client or httpx.Client(base_url=self.url, timeout=timeout)

    def __repr__(self) -> str:
        return f"RelayClient({self.url!r})"

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise RelayUnavailable(f"relay {self.url} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def post(self, offer: SignedOffer | Mapping[str, Any] | str | bytes) -> Posted:
        """Post a signed offer; it is durable on the relay when this returns."""
        r = self._request(
            "POST", "/offers", content=_body(offer), headers={"content-type": "application/json"}
        )
        body = r.json()
        return Posted(body["hash"], r.status_code == 201)

    def post_many(self, offers: list[SignedOffer]) -> list[Posted | RelayError]:
        """Post up to 100 signed offers in one request; per offer its :class:`Posted` or the error it got."""
        body = {"offers": [o.to_dict() for o in offers]}
        items = self._request("POST", "/offers/batch", json=body).json()["results"]
        return [_item(r) for r in items]

    def query(self, **filters: Any) -> Page:
        """One page of the live book. Filters: resource, side, asset, maker, min_price, max_price,
        min_remaining, max_delivery, min_reputation, min_ratings, sort (price_asc/price_desc), limit, cursor."""
        body = self._request("GET", "/offers", params=_params(filters)).json()
        return Page([RelayOffer.from_json(o) for o in body["offers"]], body["next"])

    def get(self, offer_hash: str | bytes) -> RelayOffer:
        h = offer_hash if isinstance(offer_hash, str) else "0x" + offer_hash.hex()
        return RelayOffer.from_json(self._request("GET", f"/offers/{h}").json())

    def cancel(self, signed: SignedOffer, key: Any) -> None:
        """Withdraw ``signed`` from the relay with its maker's signed cancel message (``key``: the maker's
        account). The signature stays fillable on chain: use ``OffersClient.cancel`` for that."""
        sig = sign_cancel(key, signed.domain, signed.hash)
        self._request("POST", f"/offers/0x{signed.hash.hex()}/cancel", json={"signature": "0x" + sig.hex()})

    def stream(self, *, since: int | None = None, timeout: float | None = None) -> Iterator[StreamEvent]:
        """New and changed offers as they happen (server-sent events); ``since`` resumes after a seq."""
        params = {} if since is None else {"since": since}
        try:
            with self._http.stream("GET", "/stream", params=params, timeout=timeout) as r:
                if r.status_code >= 400:
                    r.read()
                    raise _error(r)
                yield from _parse_sse(r.iter_lines())
        except httpx.HTTPError as exc:
            raise RelayUnavailable(f"relay stream {self.url} broke: {type(exc).__name__}") from None

    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/health").json())


class AsyncRelayClient:
    """The asyncio twin of :class:`RelayClient` (same methods, awaited)."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.AsyncClient | None = None):
        self.url = url.rstrip("/")
        self._http = client or httpx.AsyncClient(base_url=self.url, timeout=timeout)

    def __repr__(self) -> str:
        return f"AsyncRelayClient({self.url!r})"

    async def __aenter__(self) -> AsyncRelayClient:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise RelayUnavailable(f"relay {self.url} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    async def post(self, offer: SignedOffer | Mapping[str, Any] | str | bytes) -> Posted:
        r = await self._request(
            "POST", "/offers", content=_body(offer), headers={"content-type": "application/json"}
        )
        return Posted(r.json()["hash"], r.status_code == 201)

    async def query(self, **filters: Any) -> Page:
        body = (await self._request("GET", "/offers", params=_params(filters))).json()
        return Page([RelayOffer.from_json(o) for o in body["offers"]], body["next"])

    async def get(self, offer_hash: str | bytes) -> RelayOffer:
        h = offer_hash if isinstance(offer_hash, str) else "0x" + offer_hash.hex()
        return RelayOffer.from_json((await self._request("GET", f"/offers/{h}")).json())

    async def cancel(self, signed: SignedOffer, key: Any) -> None:
        sig = sign_cancel(key, signed.domain, signed.hash)
        await self._request(
            "POST", f"/offers/0x{signed.hash.hex()}/cancel", json={"signature": "0x" + sig.hex()}
        )

    async def stream(self, *, since: int | None = None) -> AsyncIterator[StreamEvent]:
        params = {} if since is None else {"since": since}
        async with self._http.stream("GET", "/stream", params=params, timeout=None) as r:
            if r.status_code >= 400:
                await r.aread()
                raise _error(r)
            lines: list[str] = []
            async for line in r.aiter_lines():
                lines.append(line)
                if line == "":
                    for event in _parse_sse(iter(lines)):
                        yield event
                    lines = []

    async def health(self) -> dict[str, Any]:
        return dict((await self._request("GET", "/health")).json())


def as_relay(relay: RelayClient | str) -> RelayClient:
    return relay if isinstance(relay, RelayClient) else RelayClient(relay)


def publish(offers: OffersClient, offer: Offer | SignedOffer, relay: RelayClient | str) -> SignedOffer:
    """Sign ``offer`` (if not yet signed) with ``offers``' account and post it to ``relay``."""
    signed = offer if isinstance(offer, SignedOffer) else offers.sign(offer)
    as_relay(relay).post(signed)
    return signed


def fill_from_relay(
    offers: OffersClient,
    relay: RelayClient | str,
    resource: str | bytes,
    quantity: int,
    *,
    side: Side | str = Side.SELL,
    max_price: int | None = None,
    min_price: int | None = None,
    min_reputation: float | None = None,
    max_delivery: int | None = None,
    asset: str | None = None,
    candidates: int = 20,
    approve: bool = False,
) -> Fill:
    """The buyer's (or, for buy requests, the seller's) flow: ask ``relay`` for the best live offers with at
    least ``quantity`` left, check each on chain in price order (the relay may lag the chain) and fill the
    first one that passes. Raises :class:`RelayNotFound` when none does."""
    page = as_relay(relay).query(
        resource=resource, side=side, asset=asset, max_price=max_price, min_price=min_price,
        min_remaining=quantity, min_reputation=min_reputation, max_delivery=max_delivery, limit=candidates,
    )  # fmt: skip
    reasons = []
    for found in page.offers:
        try:
            offers.check(found.signed, quantity)
        except AgentMarketError as exc:  # filled or cancelled since the relay last saw it
            reasons.append(f"{found.signed.hash.hex()[:10]}: {exc}")
            continue
        return offers.fill(found.signed, quantity, approve=approve)
    raise RelayNotFound(
        f"no fillable offer for {quantity} of {resource!r} on the relay"
        + (f" ({len(reasons)} stale: {reasons[0]})" if reasons else "")
    )

"""The relay's HTTP API (FastAPI on uvicorn).

=======  =========================  =====================================================================
method   path                       what
=======  =========================  =====================================================================
POST     /offers                    post a signed offer (201 created, 200 already known), durable before 201
POST     /offers/batch              up to 100 signed offers; per-item status (201/200/4xx), as if posted alone
GET      /offers                    query the live book (filters, price sort, keyset pagination)
GET      /offers/{hash}             one offer with its remaining quantity and status (live or not)
POST     /offers/{hash}/cancel      withdraw an offer with its maker's signed ``RelayCancel`` message
GET      /stream                    server-sent events: every new or changed offer (resumable by id)
GET      /health                    chain id, OfferBook, indexer cursor and head
=======  =========================  =====================================================================

Errors are JSON ``{"error": code, "message": text}`` with the status of a :mod:`agentmarket.relay.errors`
exception; a rejected request changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..clients.offers import OffersClient, resource_id
from ..errors import AgentMarketError
from .cancel import verify_cancel
from .errors import RelayError, RelayNotFound, RelayRateLimited
from .indexer import Indexer
from .ratelimit import Limit, RateLimiter
from .store import Filters, Store, row_text, side_of
from .validation import NeedsChain, Validator, parse_json, parse_signed, reject, signed_from


@dataclass
class RelaySettings:
    """Limits and knobs of one relay process."""

    max_body: int = 16 * 1024  # bytes; a signed offer is about 1.3 KB
    client_rate: Limit = field(default_factory=lambda: Limit(200.0, 400.0))  # requests/s per client address
    maker_rate: Limit = field(default_factory=lambda: Limit(20.0, 100.0))  # valid posts/s per maker
    max_page: int = 500
    batch_max: int = 256  # offers per group commit
    max_batch: int = 100  # offers per POST /offers/batch


_Sink = concurrent.futures.Future[bool] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[bool]"]


class GroupCommitWriter:
    """One thread owns the post inserts: it drains whatever admitted offers are waiting and, in one
    transaction, reads their door state, applies ``door`` and inserts the survivors, then answers each
    waiter. Concurrent posts share an fsync; each 201 still follows its own commit. Waiters on an event
    loop are answered with one ``call_soon_threadsafe`` per batch."""

    def __init__(
        self,
        store: Store,
        batch_max: int,
        door: Callable[[dict[str, Any], Any], Exception | None],
        on_commit: Callable[[], None],
    ):
        self.store = store
        self.batch_max = batch_max
        self.door = door
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], _Sink] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="relay-writer", daemon=True)
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> concurrent.futures.Future[bool]:
        """Queue ``row``; the future is True (inserted), False (already stored) or raises its 409."""
        fut: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._queue.put((row, fut))
        return fut

    def submit_async(self, row: dict[str, Any]) -> asyncio.Future[bool]:
        """:meth:`submit` for a caller on an event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.put((row, (loop, fut)))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    @staticmethod
    def _settle(pairs: list[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
        for fut, outcome in pairs:
            if fut.done():  # the client went away
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            outcomes: list[bool | BaseException]
            try:
                outcomes = list(self.store.admit_offers([row for row, _ in batch], self.door))
            except Exception as exc:
                outcomes = [exc] * len(batch)
            by_loop: dict[
                asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], bool | BaseException]]
            ] = {}
            for (_, sink), outcome in zip(batch, outcomes, strict=True):
                if isinstance(sink, tuple):
                    by_loop.setdefault(sink[0], []).append((sink[1], outcome))
                elif isinstance(outcome, BaseException):
                    sink.set_exception(outcome)
                else:
                    sink.set_result(outcome)
            for loop, pairs in by_loop.items():
                with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                    loop.call_soon_threadsafe(self._settle, pairs)
            if any(outcome is True for outcome in outcomes):
                self.on_commit()


def _error(exc: RelayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """A :class:`RelayError` as (status, JSON body, headers) on the front paths."""
    headers = []
    if isinstance(exc, RelayRateLimited):
        headers.append((b"retry-after", str(max(1, round(exc.retry_after + 0.5))).encode()))
    return exc.status, json.dumps({"error": exc.code, "message": str(exc)}).encode(), headers


# GET /offers parameters and their types (anything else in the query string is ignored)
_QUERY_PARAMS: dict[str, type] = {
    "resource": str, "side": str, "asset": str, "maker": str, "sort": str, "cursor": str,
    "min_price": int, "max_price": int, "min_remaining": int, "max_delivery": int, "min_ratings": int,
    "limit": int, "min_reputation": float, "include_dead": bool,
}  # fmt: skip
_TRUE, _FALSE = {"true", "1", "yes", "on", "t", "y"}, {"false", "0", "no", "off", "f", "n"}


def query_params(raw: bytes) -> dict[str, Any]:
    """The query string of ``GET /offers`` as typed keyword arguments of :meth:`Relay.filters` (the last
    of repeated names wins); a value of the wrong type is a 400 naming the parameter."""
    out: dict[str, Any] = {}
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    except ValueError as exc:
        raise reject(400, "bad_parameter", f"malformed query string: {exc}") from None
    for name, value in pairs:
        kind = _QUERY_PARAMS.get(name)
        if kind is None:
            continue
        try:
            if kind is bool:
                low = value.strip().lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError("not a boolean")
                out[name] = low in _TRUE
            elif kind is int:
                if not value.strip().lstrip("+-").isdigit():
                    raise ValueError("not an integer")
                out[name] = int(value)
            else:
                out[name] = kind(value)
        except ValueError:
            raise reject(
                400, "bad_parameter", f"query.{name}: expected {kind.__name__}, got {value!r}"
            ) from None
    return out


class Relay:
    """The service: validator, writer, indexer and the FastAPI app over one store and one OfferBook."""

    def __init__(
        self,
        book: OffersClient,
        store: Store,
        *,
        reputation: Any = None,
        indexer: Indexer | None = None,
        settings: RelaySettings | None = None,
        clock: Callable[[], int] | None = None,
    ):
        self.book = book
        self.store = store
        self.reputation = reputation
        self.indexer = indexer
        self.settings = settings or RelaySettings()
        self.client_limit = RateLimiter(self.settings.client_rate)
        self.maker_limit = RateLimiter(self.settings.maker_rate)
        self.clock = clock or self._chain_clock
        self._clock_cache = (0, 0.0)
        self.validator = Validator(
            book, store, self.clock, maker_limit=self.maker_limit, reputation=reputation
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.writer = GroupCommitWriter(store, self.settings.batch_max, self.validator.door, self.notify)
        if indexer is not None:
            indexer.on_change = self.notify
        self.api = self._build()
        self.app = self._front(self.api)

    # -- time and notifications ------------------------------------------------------------------------

    def _chain_clock(self) -> int:
        """The chain's latest block timestamp (from the indexer, else read at most once a second)."""
        if self.indexer is not None and self.indexer.head_time:
            return self.indexer.head_time
        value, at = self._clock_cache
        if time.monotonic() - at > 1.0:
            value = int(self.book.w3.eth.get_block("latest")["timestamp"])
            self._clock_cache = (value, time.monotonic())
        return value

    def notify(self) -> None:
        """Wake the streams (called from the writer and indexer threads)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    # -- the app ---------------------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        relay = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            relay._loop = asyncio.get_running_loop()
            relay._wake = asyncio.Event()
            yield

        app = FastAPI(title="agentmarket offer relay", version="1", lifespan=lifespan)

        @app.exception_handler(RelayError)
        async def _relay_error(_: Request, exc: RelayError) -> JSONResponse:
            headers = {}
            if isinstance(exc, RelayRateLimited):
                headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
            return JSONResponse(
                {"error": exc.code, "message": str(exc)}, status_code=exc.status, headers=headers
            )

        @app.exception_handler(RequestValidationError)
        async def _bad_params(_: Request, exc: RequestValidationError) -> JSONResponse:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", ()))
            return JSONResponse(
                {"error": "bad_parameter", "message": f"{where}: {first.get('msg', 'invalid')}"},
                status_code=400,
            )

        @app.post("/offers/batch")
        async def post_batch(request: Request) -> Response:
            relay.check_client(request)
            limit = relay.settings.max_body * relay.settings.max_batch
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise reject(413, "too_large", f"batch body larger than {limit} bytes")
            client = request.client.host if request.client else "unknown"
            outcome = await run_in_threadpool(relay.validate_batch, bytes(body), client)
            futures = {
                i: relay.writer.submit_async(row) for i, row in outcome.items() if isinstance(row, dict)
            }
            results: list[dict[str, Any]] = []
            for i in range(len(outcome)):
                item = outcome[i]
                if isinstance(item, dict):
                    try:
                        created = await futures[i]
                    except RelayError as exc:
                        item = exc
                    else:
                        results.append({"status": 201 if created else 200, "hash": item["hash"]})
                        continue
                results.append({"status": item.status, "error": item.code, "message": str(item)})
            return JSONResponse({"results": results})

        @app.get("/stream")
        async def stream(request: Request, since: int | None = None) -> StreamingResponse:
            relay.check_client(request)
            last = request.headers.get("last-event-id")
            start = since if since is not None else (int(last) if last and last.isdigit() else None)
            if start is None:
                start = await run_in_threadpool(relay.store.last_seq)
            return StreamingResponse(
                relay._events(request, start),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )

        @app.get("/offers/{offer_hash}")
        def get_offer(offer_hash: str, request: Request) -> dict[str, Any]:
            relay.check_client(request)
            found = relay.store.get(offer_hash.lower())
            if found is None:
                raise RelayNotFound(f"no offer {offer_hash}")
            return found

        @app.post("/offers/{offer_hash}/cancel")
        async def cancel_offer(offer_hash: str, request: Request) -> dict[str, Any]:
            relay.check_client(request)
            body = await request.body()
            if len(body) > relay.settings.max_body:
                raise reject(413, "too_large", "body too large")
            try:
                sig_hex = json.loads(body)["signature"]
                signature = bytes.fromhex(str(sig_hex).removeprefix("0x"))
            except (ValueError, KeyError, TypeError):
                raise reject(400, "malformed_cancel", 'body must be {"signature": "0x..."}') from None
            h = offer_hash.lower()
            found = await run_in_threadpool(relay.store.get, h)
            if found is None:
                raise RelayNotFound(f"no offer {offer_hash}")
            maker = found["signed"]["offer"]["maker"]
            try:
                await run_in_threadpool(
                    verify_cancel, relay.book.w3, relay.book.domain, bytes.fromhex(h[2:]), maker, signature
                )
            except AgentMarketError as exc:
                raise reject(403, "bad_signature", str(exc)) from None
            changed = await run_in_threadpool(relay.store.withdraw, h)
            if changed:
                relay.notify()
            return {"hash": h, "status": "withdrawn"}

        @app.get("/health")
        def health() -> dict[str, Any]:
            ix = relay.indexer
            return {
                "status": "ok",
                "chain_id": relay.book.domain.chain_id,
                "offerbook": relay.book.address,
                "domain": relay.book.domain.as_dict(),
                "indexed_block": (ix.next_block - 1) if ix else None,
                "head": ix.head if ix else None,
                "confirmations": ix.confirmations if ix else None,
                "reorgs": ix.reorgs if ix else 0,
                "indexer_error": ix.error if ix else None,
                "last_seq": relay.store.last_seq(),
            }

        return app

    # -- the post path, in front of FastAPI -------------------------------------------------------------

    def _front(self, api: FastAPI) -> Callable[..., Any]:
        """The ASGI app: ``POST /offers`` and ``GET /offers`` (the hot paths) handled here, everything else by
        FastAPI. They skip FastAPI's routing, dependency and response machinery (a third of a query's CPU).
        The post path validates EOA-signed offers on the event loop (no thread hop); only a post whose verdict
        needs an ``eth_call`` goes to a thread."""

        async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            if scope["type"] == "http" and scope["path"] == "/offers" and scope["method"] in ("POST", "GET"):
                if scope["method"] == "POST":
                    status, payload, headers = await self._post(scope, receive)
                else:
                    status, payload, headers = await self._query(scope)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            *headers,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
            await api(scope, receive, send)

        return app

    @staticmethod
    def _admit_client(scope: dict[str, Any]) -> str:
        """The client's address as the front path keys its rate limit."""
        return str(scope["client"][0]) if scope.get("client") else "unknown"

    def _rate_limit(self, client: str) -> None:
        """Raise ``RelayRateLimited`` (429 with Retry-After) when ``client`` is over its request rate."""
        wait = self.client_limit.take(client)
        if wait:
            raise RelayRateLimited(
                f"too many requests from {client}", retry_after=wait, code="client_rate_limited"
            )

    async def _post(
        self, scope: dict[str, Any], receive: Callable[..., Any]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """POST /offers: (status, JSON body, extra headers)."""
        client = self._admit_client(scope)
        try:
            self._rate_limit(client)
            limit = self.settings.max_body
            for name, value in scope["headers"]:
                if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                    raise reject(413, "too_large", f"body larger than {limit} bytes")
            body = b""
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return 400, b"{}", []
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    raise reject(413, "too_large", f"body larger than {limit} bytes")
            signed = parse_signed(body)
            try:
                row = self.validator.admit(signed, client, local_only=True)
            except NeedsChain:
                row = await run_in_threadpool(self.validator.admit, signed, client)
            created = await self.writer.submit_async(row)
        except RelayError as exc:
            return _error(exc)
        status = "created" if created else "exists"
        payload = json.dumps({"hash": row["hash"], "status": status}).encode()
        return (201 if created else 200), payload, []

    async def _query(self, scope: dict[str, Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """GET /offers: one page of the live book as (status, JSON body, extra headers)."""
        client = self._admit_client(scope)
        try:
            self._rate_limit(client)
            f = self.filters(**query_params(scope["query_string"]))
            rows, nxt = await run_in_threadpool(self.store.query_rows, f)
        except RelayError as exc:
            return _error(exc)
        tail = json.dumps(f"{nxt[0]}:{nxt[1]}" if nxt else None)
        text = '{"offers":[' + ",".join(row_text(r) for r in rows) + '],"next":' + tail + "}"
        return 200, text.encode(), []

    def validate_batch(self, body: bytes, client: str) -> dict[int, dict[str, Any] | RelayError]:
        """Per item of a batch: its ``offers`` row, or the error it would have got alone."""
        data = parse_json(body)
        items = data.get("offers") if isinstance(data, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= self.settings.max_batch:
            raise reject(
                400,
                "malformed_batch",
                f'body must be {{"offers": [1..{self.settings.max_batch} signed offers]}}',
            )
        out: dict[int, dict[str, Any] | RelayError] = {}
        for i, item in enumerate(items):
            try:
                out[i] = self.validator.admit(signed_from(item), client)
            except RelayError as exc:
                out[i] = exc
        return out

    def check_client(self, request: Request) -> None:
        """Charge the client address's bucket (every request but /health, valid or not)."""
        client = request.client.host if request.client else "unknown"
        wait = self.client_limit.take(client)
        if wait:
            raise RelayRateLimited(
                f"too many requests from {client}", retry_after=wait, code="client_rate_limited"
            )

    def filters(
        self, *, sort: str | None = None, cursor: str | None = None, limit: int = 50, **q: Any
    ) -> Filters:
        """Query parameters as :class:`Filters` (a bad value is a 400)."""
        try:
            side = side_of(q["side"]) if q.get("side") is not None else None
            rid = "0x" + resource_id(q["resource"]).hex() if q.get("resource") is not None else None
            from eth_utils.address import to_checksum_address

            asset = to_checksum_address(q["asset"]) if q.get("asset") else None
            maker = to_checksum_address(q["maker"]) if q.get("maker") else None
        except (ValueError, TypeError, AgentMarketError) as exc:
            raise reject(400, "bad_parameter", str(exc)) from None
        if sort not in (None, "price", "price_asc", "price_desc", "-price"):
            raise reject(400, "bad_parameter", "sort must be price_asc or price_desc")
        descending = sort in ("price_desc", "-price") or (sort is None and side == 1)
        if not 1 <= limit <= self.settings.max_page:
            raise reject(400, "bad_parameter", f"limit must be 1..{self.settings.max_page}")
        for name in ("min_price", "max_price", "min_remaining", "max_delivery", "min_ratings"):
            if q.get(name) is not None and q[name] < 0:
                raise reject(400, "bad_parameter", f"{name} must be >= 0")
        cur = None
        if cursor:
            pk, _, h = cursor.partition(":")
            if not (pk.isdigit() and h.startswith("0x")):
                raise reject(400, "bad_parameter", "malformed cursor")
            cur = (pk, h)
        return Filters(
            resource_id=rid,
            side=side,
            asset=asset,
            maker=maker,
            min_price=q.get("min_price"),
            max_price=q.get("max_price"),
            min_remaining=q.get("min_remaining"),
            max_delivery=q.get("max_delivery"),
            min_reputation=q.get("min_reputation"),
            min_ratings=q.get("min_ratings"),
            descending=descending,
            limit=limit,
            cursor=cur,
            now=self.clock(),
            include_dead=bool(q.get("include_dead")),
        )

    async def _events(self, request: Request, seq: int) -> AsyncIterator[bytes]:
        """SSE frames: ``id: <seq>``, ``event: <kind>``, ``data: <offer JSON>``; a comment line every 15 s."""
        yield b": stream open\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            rows = await run_in_threadpool(self.store.changes_since, seq)
            for s, h, kind in rows:
                offer = await run_in_threadpool(self.store.get, h)
                seq = s
                if offer is None:
                    continue
                yield f"id: {s}\nevent: {kind}\ndata: {json.dumps(offer)}\n\n".encode()
            if rows:
                idle = 0.0
                continue
            wake = self._wake
            try:
                if wake is not None:
                    wake.clear()
                    await asyncio.wait_for(wake.wait(), timeout=1.0)  # 1 s: other processes writing the DB
                else:
                    await asyncio.sleep(1.0)
            except asyncio.TimeoutError:
                idle += 1.0
                if idle >= 15:
                    idle = 0.0
                    yield b": keep-alive\n\n"

    def close(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
        self.writer.close()

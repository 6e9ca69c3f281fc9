"""Raw JSON-RPC transports for the transaction fast path.

web3.py's ``batch_requests`` refuses ``eth_sendRawTransaction`` and every web3 call pays for its
middleware stack, so the fast path talks to the node itself:

* :class:`HTTPTransport` posts JSON-RPC *batches* over one keep-alive ``requests.Session``;
* :class:`DirectTransport` calls the provider in-process (the embedded eth-tester chain: no HTTP at all).

Both retry transport failures (connection refused or reset, timeouts, HTTP 429/5xx, node "busy" errors)
with exponential backoff, a bounded number of times, then raise :class:`~agentmarket.errors.ChainUnavailable`.
JSON-RPC errors that are answers (a revert, "nonce too low") are returned per request, never retried here.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from .errors import AgentMarketError, ChainUnavailable

log = logging.getLogger("agentmarket.rpc")

# HTTP statuses and JSON-RPC error codes that mean "try again later", not "no".
RETRY_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
RETRY_RPC_CODES = frozenset({-32005})  # "limit exceeded" (rate limiting providers)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries in all, sleeping ``initial * factor**i`` (capped)."""

    attempts: int = 4
    initial: float = 0.05
    factor: float = 2.0
    max_delay: float = 1.0

    def delays(self) -> list[float]:
        return [min(self.max_delay, self.initial * self.factor**i) for i in range(max(0, self.attempts - 1))]


class RPCError(AgentMarketError):
    """A JSON-RPC error object returned by the node for one request (an answer, not a transport fault).
    Raised as is only where it is neither a revert (those are decoded into their typed errors) nor a
    known send condition: an ``AgentMarketError`` like every other failure of the library."""

    def __init__(self, error: dict[str, Any]):
        self.code = int(error.get("code", 0) or 0)
        self.message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(f"{self.message} (code {self.code})")


class _Retryable(Exception):
    """Internal: a transient failure worth another attempt."""


Call = tuple[str, Sequence[Any]]


class Transport:
    """Send JSON-RPC requests one by one or in batches; results in request order."""

    policy: RetryPolicy

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One request; raises :class:`RPCError` for an error answer."""
        result = self.batch([(method, params)])[0]
        if isinstance(result, RPCError):
            raise result
        return result

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Many requests; each entry of the result is the ``result`` or an :class:`RPCError`."""
        if not calls:
            return []
        delays = self.policy.delays()
        for attempt in itertools.count():
            try:
                return self._batch_once(calls)
            except _Retryable as exc:
                if attempt >= len(delays):
                    raise ChainUnavailable(f"node unreachable after {attempt + 1} attempts: {exc}") from None
                log.debug("rpc retry %d after %s", attempt + 1, exc)
                self._sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _batch_once(self, calls: Sequence[Call]) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        """The pause between retries (agentmarket.aio's transport awaits it on the event loop)."""
        time.sleep(seconds)

    def close(self) -> None:
        pass


_CONNECTION_HEADERS = frozenset({"accept-encoding", "connection"})


class HTTPTransport(Transport):
    """JSON-RPC over HTTP(S) with keep-alive; batches go in one POST."""

    def __init__(
        self,
        url: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: tuple[float, float] | float = (3.0, 30.0),
        max_batch: int = 500,
        request_kwargs: Mapping[str, Any] | None = None,
        session: requests.Session | None = None,
    ):
        self.url = url
        self.policy = policy or RetryPolicy()
        self.max_batch = max_batch
        # what the caller's web3 HTTPProvider sends with every request (headers, auth, TLS, proxies): the
        # fast path must reach the node exactly as web3 does (an auth proxy answers 401 otherwise)
        extra = dict(request_kwargs or {})
        self.headers: dict[str, str] = {
            "Content-Type": "application/json",
            **dict(extra.pop("headers", None) or {}),
        }
        given = extra.pop("timeout", timeout)
        # (connect, read): the direct connection sets the two separately
        self.timeout: tuple[float, float] = (
            given if isinstance(given, tuple) else (float(given), float(given))
        )
        self.post_kwargs = extra
        self._template = session  # the caller's own session: its headers, auth, cookies, TLS settings
        self._local = threading.local()  # requests.Session is not thread-safe: one per thread
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HTTPTransport({self.url!r})"

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            template = self._template
            if template is not None:
                # the caller's own session: its headers, auth, cookies and TLS settings, as web3 sends them
                session.headers.update(template.headers)
                session.auth = template.auth
                session.cookies = template.cookies
                session.verify = template.verify
                session.cert = template.cert
                session.proxies = dict(template.proxies)
            else:
                # requests re-reads proxy, netrc and CA-bundle settings from the environment on every
                # request (a scan of os.environ, a good part of a local round trip): read them once
                session.proxies.update(requests.utils.get_environ_proxies(self.url))
                auth = requests.utils.get_netrc_auth(self.url)
                if auth:
                    session.auth = auth
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                if bundle:
                    session.verify = bundle
            session.trust_env = False
            session.headers.update(self.headers)
            self._local.session = session
        return session

    def _post(self, body: Any) -> Any:
        data = json.dumps(body).encode()
        session = self.session
        if self._direct_allowed(session):
            return self._post_direct(data, session)
        try:
            response = session.post(self.url, data=data, timeout=self.timeout, **self.post_kwargs)
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            ConnectionError,
            OSError,
        ) as exc:
            self._local.session = None  # drop a half-dead keep-alive connection
            raise _Retryable(f"{type(exc).__name__}") from None
        return self._answer(response.status_code, response.content)

    def _answer(self, status: int, content: bytes) -> Any:
        if status in RETRY_HTTP_STATUS:
            raise _Retryable(f"HTTP {status}")
        if status >= 400:
            raise ChainUnavailable(f"HTTP {status} from {self.url}")
        try:
            return json.loads(content)
        except ValueError:
            raise _Retryable("malformed JSON answer") from None

    # -- the direct connection ----------------------------------------------------------------------------
    # requests (through urllib3 2) writes a request's headers and its body in two separate socket writes and
    # spends ~0.5 ms of Python per request on settings it merges again each time; on a busy machine each
    # write that wakes the node costs a scheduling round. A plain http.client keep-alive connection sends
    # headers and body in one write. Used when the session asks for nothing it would handle: no proxy, no
    # auth, no client certificate, TLS verification on; the session's headers go along unchanged.

    def _direct_allowed(self, session: requests.Session) -> bool:
        return (
            not self.post_kwargs  # anything else the caller's provider passes to requests
            and not session.cookies
            and not session.proxies
            and session.auth is None
            and session.cert is None
            and session.verify is not False
            and self.url.startswith(("http://", "https://"))
        )

    def _connection(self, session: requests.Session) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            parts = urllib.parse.urlsplit(self.url)
            if parts.scheme == "https":
                cafile = session.verify if isinstance(session.verify, str) else None
                context = ssl.create_default_context(cafile=cafile)
                conn = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=self.timeout[0], context=context
                )
            else:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout[0])
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout[1])
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
            self._local.path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return conn

    def _post_direct(self, data: bytes, session: requests.Session) -> Any:
        # the session's headers (User-Agent, whatever a caller added), minus the two http.client manages:
        # no compressed answers (identity), keep-alive is HTTP/1.1's default
        headers = {str(k): str(v) for k, v in session.headers.items() if k.lower() not in _CONNECTION_HEADERS}
        try:
            conn = self._connection(session)
            conn.request("POST", self._local.path, body=data, headers=headers)
            response = conn.getresponse()
            content = response.read()
            if response.getheader("Content-Encoding", "identity").lower() in ("gzip", "deflate"):
                content = zlib.decompress(content, 47)  # a server that compresses regardless: gzip or zlib
            if response.will_close:
                self._drop_connection()
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            self._drop_connection()
            raise _Retryable(f"{type(exc).__name__}") from None
        return self._answer(response.status, content)

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _batch_once(self, calls: Sequence[Call]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), self.max_batch):
            chunk = calls[start : start + self.max_batch]
            with self._ids_lock:
                ids = [next(self._ids) for _ in chunk]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, chunk, strict=True)
            ]
            answer = self._post(body if len(body) > 1 else body[0])
            if isinstance(answer, dict):
                answer = [answer]
            if not isinstance(answer, list):
                raise _Retryable("unexpected JSON-RPC answer")
            by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
            for i in ids:
                item = by_id.get(i)
                if item is None:
                    raise _Retryable("batch answer is missing a response")
                error = item.get("error")
                if error is not None:
                    if int(error.get("code", 0) or 0) in RETRY_RPC_CODES:
                        raise _Retryable(str(error.get("message", "busy")))
                    results.append(RPCError(error))
                else:
                    results.append(item.get("result"))
        return results

    def close(self) -> None:
        self._drop_connection()
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


class DirectTransport(Transport):
    """In-process: hand each request to the web3 provider's ``make_request`` (eth-tester; no HTTP)."""

    def __init__(self, make_request: Callable[[str, Any], Any], *, policy: RetryPolicy | None = None):
        self._make_request = make_request
        self.policy = policy or RetryPolicy(attempts=1)

    def __repr__(self) -> str:
        return "DirectTransport()"

    def _batch_once(self, calls: Sequence[Call]) -> list[Any]:
        results: list[Any] = []
        for method, params in calls:
            try:
                answer = self._make_request(method, list(params))
            except Exception as exc:
                results.append(_exception_as_error(exc))
                continue
            error = answer.get("error") if isinstance(answer, dict) else None
            if error is not None:
                results.append(RPCError(error if isinstance(error, dict) else {"message": str(error)}))
            else:
                results.append(answer.get("result") if isinstance(answer, dict) else answer)
        return results


def _exception_as_error(exc: BaseException) -> RPCError:
    error = RPCError({"code": -32000, "message": f"{type(exc).__name__}: {exc}"})
    error.__cause__ = exc
    error.original = exc  # type: ignore[attr-defined]
    return error


def custom_middleware(w3: Any) -> list[Any]:
    """The middleware of ``w3`` that the caller added (web3's defaults only reshape answers, which the
    fast path reads raw; anything else may sign, authenticate, log or rewrite requests)."""
    from web3.manager import RequestManager

    defaults = {name: mw for mw, name in RequestManager.get_default_middleware()}
    onion = getattr(w3, "middleware_onion", None)
    layers = onion.middleware if onion is not None else ()
    return [mw for mw, name in layers if defaults.get(name) is not mw]


def transport_for(chain: Any, policy: RetryPolicy | None = None) -> Transport:
    """The fastest transport for ``chain`` that reaches the node the way its ``Web3`` does: direct for the
    embedded chain; batched HTTP with the provider's own request settings (headers, auth, TLS) for an HTTP
    provider; through the provider and the caller's own middleware, one request at a time, when the
    ``Web3`` carries middleware of its own (or a provider that is not plain HTTP)."""
    w3 = chain.w3
    provider = w3.provider
    custom = [] if chain.kind == "embedded" else custom_middleware(w3)
    if custom:
        from web3.middleware import combine_middleware

        request = combine_middleware(
            middleware=tuple(custom), w3=w3, provider_request_fn=provider.make_request
        )
        return DirectTransport(request, policy=policy)
    url = getattr(provider, "endpoint_uri", None) or getattr(chain, "url", None)
    if chain.kind == "embedded" or not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        tester_middleware = getattr(provider, "_middleware", None)
        if tester_middleware is not None and hasattr(provider, "ethereum_tester"):
            # eth-tester answers in its own (snake_case) shape; its two provider middlewares make it
            # JSON-RPC shaped. Skip web3's general middleware stack: it is what makes web3 calls slow.
            from web3.middleware import combine_middleware

            request = combine_middleware(
                middleware=tuple(tester_middleware), w3=chain.w3, provider_request_fn=provider.make_request
            )
            return DirectTransport(request, policy=policy)
        return DirectTransport(provider.make_request, policy=policy)
    kwargs = provider.get_request_kwargs() if hasattr(provider, "get_request_kwargs") else {}
    manager = getattr(provider, "_request_session_manager", None)
    session = getattr(manager, "_explicit_session", None) if manager is not None else None
    return HTTPTransport(
        str(url),
        policy=policy,
        request_kwargs=kwargs,
        session=session if isinstance(session, requests.Session) else None,
    )

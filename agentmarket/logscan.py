"""Event lookups over long chains: start at the contract's deployment block and read ``eth_getLogs`` in
windows that adapt to what the provider accepts.

Public RPC providers cap ``eth_getLogs`` (a block range of 1k-10k, a result count, a response size or a
time budget) and say so in different words. A client cannot know the cap in advance, so :func:`get_logs`
learns it per connection: it first asks for the whole range in one request (a local node answers that),
and when the provider refuses ("range too large", "limit exceeded", a timeout, HTTP 413) it halves the
window, remembers the smallest refused window as a ceiling, and grows again (doubling, never past the
ceiling) while requests succeed. Any other error is raised unchanged: a refusal is told apart by its
words, never by retrying blindly.

Every client calls :func:`get_logs` with its ``from_block``; clients built from a deployed suite start at
the block the manifest records for their contract (:func:`remember_deployment` / :func:`deployment_block`),
so a lookup on a chain with millions of blocks before the deployment costs what it costs on a fresh one.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from .errors import ChainUnavailable

__all__ = [
    "LogWindow",
    "deployment_block",
    "get_logs",
    "is_range_refusal",
    "remember_deployment",
    "window_of",
]

log = logging.getLogger("agentmarket.logscan")

#: first window once a provider has refused a whole-range request (most public providers allow 1k-10k)
FIRST_WINDOW = 2_000
#: the window never grows past this many blocks (a bound on one request's work)
MAX_WINDOW = 1_000_000

# What providers say when a range is too wide or an answer too big (geth, erigon, Alchemy, Infura,
# QuickNode, Ankr, Cloudflare, BlastAPI, ...): matched case-insensitively against the error text.
_REFUSAL = re.compile(
    r"range|too (?:large|big|wide|many)|limit|exceed|more than|max(?:imum)? (?:block|result)|"
    r"response size|result set|timeout|timed out|time out|query returned|too much|payload|413",
    re.IGNORECASE,
)


def is_range_refusal(exc: BaseException) -> bool:
    """True when ``exc`` says the ``eth_getLogs`` request asked for too much (range, result count,
    response size, time), so a smaller window may succeed; False for every other failure."""
    try:  # a timeout of the HTTP client is a refusal too: the node gave up on the range
        import requests

        if isinstance(exc, requests.exceptions.Timeout):
            return True
        if isinstance(exc, requests.exceptions.HTTPError):
            status = exc.response.status_code if exc.response is not None else 0
            return status in (413, 504) or bool(_REFUSAL.search(str(exc)))
    except ImportError:  # pragma: no cover - requests ships with web3
        pass
    if isinstance(exc, TimeoutError):
        return True
    text = str(exc)
    rpc = getattr(exc, "rpc_response", None)
    if isinstance(rpc, Mapping) and isinstance(rpc.get("error"), Mapping):
        text = f"{text} {rpc['error'].get('message', '')}"
    return bool(_REFUSAL.search(text))


@dataclass
class LogWindow:
    """What one connection has learned about its provider's ``eth_getLogs`` limit."""

    #: blocks per request; None until the provider first refuses (then whole ranges are asked for)
    size: int | None = None
    #: the smallest window the provider refused (growth stops below it)
    ceiling: int | None = None
    #: the largest window that went through since the last refusal at or below it
    floor: int = 0
    streak: int = 0
    requests: int = 0
    refusals: int = 0

    def refused(self, tried: int) -> int:
        """Shrink after a refusal of ``tried`` blocks; returns the new window."""
        self.refusals += 1
        self.streak = 0
        if tried <= 1:
            raise ChainUnavailable("the provider refuses eth_getLogs even for a single block")
        self.ceiling = tried if self.ceiling is None else min(self.ceiling, tried)
        if self.floor >= tried:  # a limit on results, not blocks: this stretch is denser than before
            self.floor = 0
        if self.size is None:
            self.size = min(tried // 2, FIRST_WINDOW)
        else:
            self.size = self.floor if self.floor else tried // 2
        return self.size

    def succeeded(self, tried: int) -> None:
        """Grow after a full-sized window went through: doubling, then halfway to a known ceiling (which
        is forgotten after a long run of successes: a timeout under load must not cap a connection)."""
        if self.size is None or tried < self.size:
            return
        self.floor = max(self.floor, tried)
        self.streak += 1
        if self.ceiling is not None and self.streak >= 64:
            self.ceiling, self.streak = self.ceiling * 2, 0
        grown = min(MAX_WINDOW, self.size * 2)
        if self.ceiling is not None and grown >= self.ceiling:
            grown = max(self.size, (self.size + self.ceiling) // 2)
        self.size = grown


_windows: weakref.WeakKeyDictionary[Any, LogWindow] = weakref.WeakKeyDictionary()
_deployments: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _key(w3: Web3) -> Any:
    # per provider, not per Web3 object: two Web3 instances over one provider share what they learned, and
    # a provider that reaches the same node another way (agentmarket.aio's) names that one as ``same_node_as``
    return getattr(w3.provider, "same_node_as", None) or w3.provider


def window_of(w3: Web3) -> LogWindow:
    """The learned ``eth_getLogs`` window of ``w3``'s provider (created on first use)."""
    with _lock:
        window = _windows.get(_key(w3))
        if window is None:
            window = _windows[_key(w3)] = LogWindow()
        return window


def remember_deployment(w3: Web3, address: str, block: int) -> None:
    """Record that the contract at ``address`` was deployed in ``block`` (from a deployment manifest)."""
    with _lock:
        _deployments.setdefault(_key(w3), {})[str(address).lower()] = int(block)


def deployment_block(w3: Web3, address: str | Sequence[str]) -> int:
    """The block the contract(s) at ``address`` were deployed in (the earliest, for several), as recorded
    by :func:`remember_deployment`; 0 when unknown (then lookups scan from genesis)."""
    addresses = [address] if isinstance(address, str) else list(address)
    with _lock:
        known = _deployments.get(_key(w3), {})
        blocks = [known.get(str(a).lower()) for a in addresses]
    return 0 if not blocks or any(b is None for b in blocks) else min(b for b in blocks if b is not None)


def _block_number(value: int | str, w3: Web3) -> int:
    if isinstance(value, int):
        return value
    if value == "latest":
        return int(w3.eth.block_number)
    if value in ("safe", "finalized", "pending", "earliest"):
        tag: Any = value
        return int(w3.eth.get_block(tag)["number"])
    return int(value, 16) if value.startswith("0x") else int(value)


def get_logs(
    w3: Web3,
    params: Mapping[str, Any],
    from_block: int,
    to_block: int | str = "latest",
) -> list[Any]:
    """The logs matching ``params`` (``address``, ``topics``) in [``from_block``, ``to_block``], in chain
    order, read in windows that adapt to the provider's ``eth_getLogs`` limit (see the module doc).

    A provider that never refuses gets one request per lookup; one that caps ranges gets
    ``ceil(range / window)`` requests once its window is learned, plus one ``eth_blockNumber`` to pin
    ``"latest"``. Errors other than a refusal propagate unchanged.
    """
    window = window_of(w3)
    query = {k: v for k, v in params.items() if k not in ("fromBlock", "toBlock", "blockHash")}
    start = max(0, int(from_block))
    if window.size is None:
        # no limit seen yet on this connection: ask for the whole range at once
        window.requests += 1
        try:
            return list(w3.eth.get_logs({**query, "fromBlock": start, "toBlock": to_block}))  # type: ignore[typeddict-item]
        except Exception as exc:
            if not is_range_refusal(exc):
                raise
            end = _block_number(to_block, w3)
            if end < start:
                return []
            size = window.refused(end - start + 1)
            log.info("eth_getLogs refused %d blocks (%s); reading %d at a time", end - start + 1, exc, size)
    else:
        end = _block_number(to_block, w3)
    out: list[Any] = []
    while start <= end:
        size = window.size or FIRST_WINDOW
        stop = min(end, start + size - 1)
        window.requests += 1
        try:
            out.extend(w3.eth.get_logs({**query, "fromBlock": start, "toBlock": stop}))  # type: ignore[typeddict-item]
        except Exception as exc:
            if not is_range_refusal(exc):
                raise
            window.refused(stop - start + 1)
            log.debug("eth_getLogs refused [%d, %d]; window now %s", start, stop, window.size)
            continue
        window.succeeded(stop - start + 1)
        start = stop + 1
    return out

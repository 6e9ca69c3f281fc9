"""The indexer: follows the OfferBook's fills, cancels and counter bumps (and the ReputationRegistry's
ratings) into the relay database.

* Confirmations: only blocks at least ``confirmations`` deep are indexed.
* Reorgs: the hash of every indexed block that had events, and of every range end, is stored. Each step
  first checks the newest stored hash against the chain; on a mismatch it walks back to the newest block
  that still matches and rolls the database back to it (events, derived offer state, cursor: one
  transaction), then indexes forward again. Logs are only applied when their ``blockHash`` matches the
  header read for the same range, so a reorg racing a step is retried, never half-applied.
* Restart: the cursor (next block) is in the database, committed with the events it covers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from ..clients.offers import OffersClient
from ..logscan import get_logs
from .store import ChainEvent, Store

log = logging.getLogger("agentmarket.relay.indexer")


def _hex(value: Any) -> str:
    return "0x" + bytes(HexBytes(value)).hex()


class Indexer:
    """Follows one OfferBook (``book``, a read-only client) and optionally a ReputationRegistry client."""

    def __init__(
        self,
        book: OffersClient,
        store: Store,
        *,
        reputation: Any = None,
        confirmations: int = 0,
        start_block: int = 0,
        chunk: int = 2_000,
        poll_interval: float = 0.25,
    ):
        self.book = book
        self.w3 = book.w3
        self.store = store
        self.reputation = reputation
        self.confirmations = max(0, int(confirmations))
        self.chunk = chunk
        self.poll_interval = poll_interval
        self.next_block = store.indexer_cursor(book.chain.chain_id, book.address, start_block)
        self.start_block = start_block
        self.head = -1
        self.head_time = 0
        self.reorgs = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._addresses = [book.address] + ([reputation.address] if reputation is not None else [])
        self._rated_topic = (
            HexBytes(event_abi_to_log_topic(reputation.contract.events.Rated().abi))
            if reputation is not None
            else None
        )
        self.on_change: Any = None  # called (no arguments) after a step changed offers

    # -- one step --------------------------------------------------------------------------------------

    def _block_hash(self, number: int) -> str | None:
        try:
            block = self.w3.eth.get_block(number)
        except Exception:
            return None
        return _hex(block["hash"]) if block is not None else None

    def _check_reorg(self) -> bool:
        stored = self.store.block_hashes(below=self.next_block, limit=1)
        if not stored or self._block_hash(stored[0][0]) == stored[0][1]:
            return False
        ancestor = self.start_block - 1
        for number, h in self.store.block_hashes(below=self.next_block, limit=4096):
            if self._block_hash(number) == h:
                ancestor = number
                break
        changed, rated = self.store.rollback(ancestor)
        log.warning("reorg: rolled back to block %d (%d offers changed)", ancestor, changed)
        self.reorgs += 1
        self.next_block = ancestor + 1
        if rated:
            self.store.apply([], [], self.next_block, self._reputations(rated, ancestor))
        if changed and self.on_change:
            self.on_change()
        return True

    def _reputations(
        self, pairs: set[tuple[str, str]], block: int
    ) -> list[tuple[str, str, int, float | None]]:
        out = []
        for ratee, asset in sorted(pairs):
            values = self.reputation.contract.functions.summary(ratee, asset).call(block_identifier=block)
            count, total_weight, weighted = (int(v) for v in values)
            out.append((ratee, asset, count, weighted / total_weight if total_weight else None))
        return out

    def step(self) -> int:
        """Index what is confirmed and not yet indexed (one chunk at most); returns offers changed."""
        head = int(self.w3.eth.block_number)
        self.head = head
        self.head_time = int(self.w3.eth.get_block(head)["timestamp"])
        if self._check_reorg():
            return 0
        target = head - self.confirmations
        if target < self.next_block:
            return 0
        to = min(target, self.next_block + self.chunk - 1)
        logs = get_logs(self.w3, {"address": self._addresses}, self.next_block, to)
        numbers = sorted({int(lg["blockNumber"]) for lg in logs} | {to})
        hashes = {n: self._block_hash(n) for n in numbers}
        if any(h is None for h in hashes.values()) or any(
            _hex(lg["blockHash"]) != hashes[int(lg["blockNumber"])] for lg in logs
        ):
            return 0  # a reorg raced this step: the next one sees it
        events: list[ChainEvent] = []
        rated: set[tuple[str, str]] = set()
        for lg in sorted(logs, key=lambda x: (int(x["blockNumber"]), int(x["logIndex"]))):
            block, index = int(lg["blockNumber"]), int(lg["logIndex"])
            if self._rated_topic is not None and HexBytes(lg["topics"][0]) == self._rated_topic:
                args = self.reputation.contract.events.Rated().process_log(lg)["args"]
                pair = (to_checksum_address(args["ratee"]), to_checksum_address(args["asset"]))
                rated.add(pair)
                events.append(ChainEvent(block, index, "rated", account=pair[0], asset=pair[1]))
                continue
            decoded = self.book._decode(lg)
            if decoded is None:
                continue
            name, event = decoded
            args = event["args"]
            if name == "OfferFilled":
                events.append(
                    ChainEvent(
                        block, index, "filled", offer_hash=_hex(args["offerHash"]), value=int(args["filled"])
                    )
                )
            elif name == "OfferCancelled":
                # the cancel kills the maker's whole slot of that counter: the store hides every offer in it
                events.append(
                    ChainEvent(
                        block,
                        index,
                        "cancelled",
                        offer_hash=_hex(args["offerHash"]),
                        account=to_checksum_address(args["maker"]),
                        value=int(args["counter"]),
                        slot=int(args["slot"]),
                    )
                )
            elif name == "CounterIncremented":
                events.append(
                    ChainEvent(
                        block,
                        index,
                        "counter",
                        account=to_checksum_address(args["maker"]),
                        value=int(args["counter"]),
                    )
                )
        reputations = self._reputations(rated, to) if rated else []
        changed = self.store.apply(events, [(n, h) for n, h in hashes.items() if h], to + 1, reputations)
        self.next_block = to + 1
        if changed and self.on_change:
            self.on_change()
        return changed

    def catch_up(self, max_steps: int = 10_000) -> int:
        """Step until nothing confirmed is left to index; returns offers changed."""
        total = 0
        for _ in range(max_steps):
            before = self.next_block
            total += self.step()
            if self.next_block == before or self.next_block > self.head - self.confirmations:
                break
        return total

    # -- background thread -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-indexer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
                self.error = None
            except Exception as exc:  # the chain may be briefly unreachable: report and retry
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("indexer step failed: %s", self.error)
            self._stop.wait(self.poll_interval)

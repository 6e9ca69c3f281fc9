"""Validation at the door: everything a post must pass before it is stored.

The offer format, its EIP-712 hash and the signature check are the project's own
(:class:`~agentmarket.clients.offers.SignedOffer`, :meth:`OffersClient.verify_signature`, which tries the
local ECDSA recovery first and falls back to the maker wallet's ERC-1271 ``isValidSignature`` through an
``eth_call``), so the relay accepts exactly what the OfferBook would fill. What the relay adds: the domain
must be the one it serves, the offer must be alive (not expired, not cancelled, not exhausted on chain, its
counter current) and fit the relay's limits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clients.offers import OffersClient, SignedOffer
from ..eip712 import recover
from ..errors import AgentMarketError, InvalidInput, SignatureError
from .errors import RelayRateLimited, RelayRejected
from .models import MAX_QUANTITY
from .ratelimit import RateLimiter
from .store import Store, offer_row


def reject(status: int, code: str, message: str) -> RelayRejected:
    return RelayRejected(message, status=status, code=code)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise reject(400, "malformed_json", f"body is not JSON: {exc}") from None


def parse_signed(body: bytes) -> SignedOffer:
    """A SignedOffer from a request body, or a 400 naming what is wrong with it."""
    return signed_from(parse_json(body))


def signed_from(data: Any) -> SignedOffer:
    """A SignedOffer from decoded JSON, or a 400 naming what is wrong with it."""
    if not isinstance(data, dict) or not isinstance(data.get("offer"), dict):
        raise reject(400, "malformed_offer", "body must be a signed offer object with an 'offer' member")
    if not isinstance(data.get("domain"), dict) or not isinstance(data.get("signature"), str):
        raise reject(
            400, "malformed_offer", "a signed offer needs 'domain' (object) and 'signature' (0x-hex)"
        )
    for key, value in data["offer"].items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise reject(400, "wrong_type", f"offer field {key!r} must be a string or an integer")
    try:
        return SignedOffer.from_dict(data)
    except InvalidInput as exc:
        raise reject(400, "malformed_offer", str(exc)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise reject(400, "malformed_offer", f"malformed signed offer: {type(exc).__name__}: {exc}") from None


class NeedsChain(Exception):
    """The offer passed every local check but its verdict needs the chain (an ``eth_call``): the maker's
    signature does not recover locally (ERC-1271 wallet, or a forgery to be told apart from one), or its
    (maker, asset) reputation was never fetched. The event loop re-runs :meth:`Validator.admit` in a thread."""


@dataclass(frozen=True)
class DoorState:
    """What the database says about one offer and its maker, read by the writer inside its transaction."""

    withdrawn: bool | None  # None: not stored
    filled: int
    cancelled: bool
    counter: int  # the maker's counter indexed from CounterIncremented (0: never bumped)


class Validator:
    """Checks posts against one OfferBook (``book``: a read-only :class:`OffersClient`).

    Two halves: :meth:`admit` (everything the offer itself and the chain's signature rules decide, no
    database: runs on the event loop for EOA makers) and :meth:`door` (what the database knows: stored and
    withdrawn, filled or cancelled on chain, the maker's counter), which the group-commit writer applies to
    a whole batch from three reads in the same transaction that inserts it."""

    def __init__(
        self,
        book: OffersClient,
        store: Store,
        clock: Callable[[], int],
        *,
        maker_limit: RateLimiter,
        reputation: Any = None,
    ):
        self.book = book
        self.domain = book.domain
        self.store = store
        self.clock = clock
        self.maker_limit = maker_limit
        self.reputation = reputation
        self._rep_known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def admit(self, signed: SignedOffer, client: str, *, local_only: bool = False) -> dict[str, Any]:
        """The ``offers`` row of a signed offer that passes every check but the database's (see :meth:`door`),
        or a :class:`RelayRejected`/:class:`RelayRateLimited`. ``local_only``: raise :class:`NeedsChain`
        instead of making an ``eth_call`` (before the maker's rate budget is charged)."""
        o = signed.offer
        d = signed.domain
        if d.chain_id != self.domain.chain_id:
            raise reject(
                422,
                "wrong_chain",
                f"offer signed for chain {d.chain_id}, this relay serves {self.domain.chain_id}",
            )
        if d != self.domain:
            raise reject(
                422,
                "wrong_offerbook",
                f"offer signed for OfferBook {d.verifying_contract} ({d.name} v{d.version}), this relay serves "
                f"{self.domain.verifying_contract}",
            )
        try:
            o.validate()
        except InvalidInput as exc:
            raise reject(422, "invalid_terms", str(exc)) from None
        if o.quantity > MAX_QUANTITY:
            raise reject(422, "invalid_terms", f"quantity above the relay's limit {MAX_QUANTITY}")
        now = self.clock()
        if o.expiry < now:
            raise reject(422, "expired", f"offer expired at {o.expiry} (chain time {now})")
        if local_only:
            try:
                local = recover(signed.hash, signed.signature) == o.maker
            except SignatureError:
                local = False
            if not local:
                raise NeedsChain
            if self.reputation is not None and (o.maker, o.asset) not in self._rep_known:
                raise NeedsChain
        else:
            try:
                self.book.verify_signature(signed)
            except SignatureError as exc:
                raise reject(422, "bad_signature", str(exc)) from None
            except AgentMarketError as exc:
                raise reject(422, "bad_signature", f"signature check failed: {exc}") from None
        # only a valid signature spends the maker's budget: nobody can exhaust another maker's bucket
        wait = self.maker_limit.take(o.maker)
        if wait:
            raise RelayRateLimited(
                f"too many posts for maker {o.maker}", retry_after=wait, code="maker_rate_limited"
            )
        if not local_only and (o.maker, o.asset) not in self._rep_known:
            self._fetch_reputation(o.maker, o.asset)
        return offer_row(signed, filled=0, cancelled=False, posted_by=client)

    def check(self, signed: SignedOffer, client: str) -> dict[str, Any]:
        """:meth:`admit` then :meth:`door` against the database as it is now (one offer, no insert)."""
        row = self.admit(signed, client)
        error = self.door(row, self.store.door_states([row])[row["hash"]])
        if error is not None:
            raise error
        return row

    @staticmethod
    def door(row: dict[str, Any], state: DoorState) -> RelayRejected | None:
        """The database's verdict on an admitted row: None (and ``row`` updated with the filled quantity
        the chain has) or the 409 it gets."""
        h = row["hash"]
        if state.withdrawn:
            return reject(409, "withdrawn", f"offer {h} was withdrawn by its maker")
        if state.cancelled:
            return reject(409, "cancelled", f"offer {h} was cancelled on chain")
        if state.filled >= row["quantity"]:
            return reject(
                409, "filled", f"offer {h} is fully filled on chain ({state.filled}/{row['quantity']})"
            )
        # The counter indexed from CounterIncremented since the OfferBook's deployment (0 for a maker never
        # seen). No eth_call per post: a bump younger than the confirmation depth is not seen yet, and the
        # offers it voids are voided by the indexer once it is confirmed.
        if row["counter"] != state.counter:
            return reject(
                409,
                "stale_counter",
                f"offer counter {row['counter']}, the maker's counter is {state.counter}",
            )
        if state.filled:
            row["filled"] = state.filled
            row["remaining"] = row["quantity"] - state.filled
            row["live"] = row["remaining"] > 0
        return None

    def _fetch_reputation(self, maker: str, asset: str) -> None:
        if self.reputation is None:
            return
        if not self.store.has_reputation(maker, asset):
            figures = self.reputation.figures(maker, asset)
            self.store.upsert_reputation(maker, asset, figures.count, figures.score)
        with self._lock:
            self._rep_known.add((maker, asset))

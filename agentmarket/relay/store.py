"""Every read and write of the relay database, in one place (the app, the indexer and tests share it).

Writes are short transactions. The post path inserts a whole batch of validated offers in one commit
(group commit: many concurrent posts share one fsync); the indexer applies a block range of events, its
block hashes and its cursor in one commit, and a reorg rollback is one commit too, so a reader never
sees a half-applied range.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from ..clients.offers import Side, SignedOffer
from .models import blocks, chain_events, changes, indexer_state, makers, offers, price_key, reputation

_ev = chain_events.c
# what a page row needs (row_json/row_text and the cursor): not the indexed copies of the offer's terms
_PAGE_COLUMNS = (
    offers.c.hash,
    offers.c.body,
    offers.c.price_key,
    offers.c.filled,
    offers.c.remaining,
    offers.c.expiry,
    offers.c.cancelled,
    offers.c.withdrawn,
    offers.c.voided,
    reputation.c.count.label("rep_count"),
    reputation.c.score.label("rep_score"),
)
_OFFER_COLUMNS = tuple(c.name for c in offers.columns)
_COPY_OFFERS = f"COPY offers ({', '.join(_OFFER_COLUMNS)}) FROM STDIN"
_LIVE = and_(~offers.c.cancelled, ~offers.c.withdrawn, ~offers.c.voided, offers.c.remaining > 0)


_F = TypeVar("_F", bound=Callable[..., Any])


def _retry_disconnect(method: _F) -> _F:
    """Run ``method`` again once if the database dropped its pooled connection (a PostgreSQL restart):
    the pool has no pre-ping (a round trip per checkout), so a dead connection shows up as an invalidated
    one on first use; the failed transaction was rolled back, so running it again is safe."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class ChainEvent:
    """One OfferBook/ReputationRegistry event as the indexer stores it."""

    block: int
    log_index: int
    kind: str  # filled | cancelled | counter | rated
    offer_hash: str | None = None
    account: str | None = None  # cancelled/counter: the maker; rated: the ratee
    asset: str | None = None
    value: int | None = None  # filled: total filled; counter: the new counter; cancelled: the counter
    slot: int | None = None  # cancelled: the cancel slot (every offer of maker, counter and slot dies)


@dataclass(frozen=True)
class Filters:
    """A book query. Prices in the asset's smallest unit; ``cursor`` is the ``next`` of the previous page."""

    resource_id: str | None = None
    side: int | None = None
    asset: str | None = None
    maker: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    min_remaining: int | None = None
    max_delivery: int | None = None
    min_reputation: float | None = None
    min_ratings: int | None = None
    descending: bool = False
    limit: int = 50
    cursor: tuple[str, str] | None = None  # (price_key, hash) of the last row of the previous page
    now: int = 0
    include_dead: bool = False


def offer_row(signed: SignedOffer, *, filled: int, cancelled: bool, posted_by: str) -> dict[str, Any]:
    """The ``offers`` row of a validated signed offer (``filled``/``cancelled`` as the chain has them)."""
    o = signed.offer
    remaining = o.quantity - filled
    return {
        "hash": "0x" + signed.hash.hex(),
        "maker": o.maker,
        "side": int(o.side),
        "resource_id": "0x" + o.resource_id.hex(),
        "asset": o.asset,
        "price_key": price_key(o.unit_price),
        "quantity": o.quantity,
        "filled": filled,
        "remaining": remaining,
        "delivery_seconds": o.delivery_seconds,
        "expiry": o.expiry,
        "counter": o.counter,
        "slot": o.cancel_slot,
        "cancelled": cancelled,
        "withdrawn": False,
        "voided": False,
        "live": not cancelled and remaining > 0,
        "body": signed.to_json(),
        "posted_by": posted_by,
        "created_at": time.time(),
    }


def _cancel_keys(conn: Connection, maker_addrs: Iterable[str]) -> set[tuple[str, int, int]]:
    """(maker, counter, slot) of every indexed on-chain cancel by ``maker_addrs``: an offer is cancelled
    when its own triple is among them (a cancel kills the whole slot, OfferBook.cancel)."""
    addrs = sorted(set(maker_addrs))
    keys: set[tuple[str, int, int]] = set()
    for i in range(0, len(addrs), 500):
        for account, counter, slot in conn.execute(
            select(_ev.account, _ev.value, _ev.slot)
            .where(_ev.kind == "cancelled", _ev.slot.is_not(None), _ev.account.in_(addrs[i : i + 500]))
            .distinct()
        ).all():
            keys.add((str(account), int(counter), int(slot)))
    return keys


def _slot_offers(conn: Connection, keys: Iterable[tuple[str, int, int]]) -> set[str]:
    """Hashes of the stored offers in the given (maker, counter, slot) triples."""
    out: set[str] = set()
    for maker, counter, slot in set(keys):
        out.update(
            conn.execute(
                select(offers.c.hash).where(
                    offers.c.maker == maker, offers.c.counter == counter, offers.c.slot == slot
                )
            ).scalars()
        )
    return out


def _status(row: Any) -> str:
    return (
        "withdrawn"
        if row.withdrawn
        else "cancelled"
        if row.cancelled
        else "voided"
        if row.voided
        else "filled"
        if row.remaining <= 0
        else "live"
    )


def row_text(row: Any) -> str:
    """:func:`row_json` as JSON text, the stored signed offer spliced in as is (the query hot path)."""
    score = "null" if row.rep_score is None else repr(float(row.rep_score))
    return (
        f'{{"hash":"{row.hash}","signed":{row.body},"filled":{int(row.filled)},'
        f'"remaining":{int(row.remaining)},"status":"{_status(row)}","expiry":{int(row.expiry)},'
        f'"reputation":{{"count":{int(row.rep_count or 0)},"score":{score}}}}}'
    )


def row_json(row: Any, rep: tuple[int, float | None] | None = None) -> dict[str, Any]:
    """The API's view of an ``offers`` row: the signed offer plus its book state."""
    signed = json.loads(row.body)
    status = _status(row)
    out = {
        "hash": row.hash,
        "signed": signed,
        "filled": int(row.filled),
        "remaining": int(row.remaining),
        "status": status,
        "expiry": int(row.expiry),
    }
    if rep is not None:
        out["reputation"] = {"count": rep[0], "score": rep[1]}
    return out


def _page_query(f: Filters) -> Select[Any]:
    """The SELECT of one page of ``f`` (one more row than the page, to know whether a next page exists)."""
    join = offers.outerjoin(
        reputation, and_(reputation.c.maker == offers.c.maker, reputation.c.asset == offers.c.asset)
    )
    q = select(*_PAGE_COLUMNS).select_from(join)
    cond: list[Any] = []
    if not f.include_dead:
        cond += [offers.c.live.is_(True), offers.c.expiry >= f.now]
    if f.resource_id is not None:
        cond.append(offers.c.resource_id == f.resource_id)
    if f.side is not None:
        cond.append(offers.c.side == f.side)
    if f.asset is not None:
        cond.append(offers.c.asset == f.asset)
    if f.maker is not None:
        cond.append(offers.c.maker == f.maker)
    if f.min_price is not None:
        cond.append(offers.c.price_key >= price_key(f.min_price))
    if f.max_price is not None:
        cond.append(offers.c.price_key <= price_key(f.max_price))
    if f.min_remaining is not None:
        cond.append(offers.c.remaining >= f.min_remaining)
    if f.max_delivery is not None:
        cond.append(offers.c.delivery_seconds <= f.max_delivery)
    if f.min_reputation is not None:
        cond.append(reputation.c.score >= f.min_reputation)
    if f.min_ratings is not None:
        cond.append(func.coalesce(reputation.c.count, 0) >= f.min_ratings)
    if f.cursor is not None:
        pk, h = f.cursor
        if f.descending:
            cond.append(or_(offers.c.price_key < pk, and_(offers.c.price_key == pk, offers.c.hash < h)))
        else:
            cond.append(or_(offers.c.price_key > pk, and_(offers.c.price_key == pk, offers.c.hash > h)))
    order = (
        (offers.c.price_key.desc(), offers.c.hash.desc())
        if f.descending
        else (offers.c.price_key.asc(), offers.c.hash.asc())
    )
    return q.where(*cond).order_by(*order).limit(f.limit + 1)


def _page(f: Filters, rows: Sequence[Any]) -> tuple[list[Any], tuple[str, str] | None]:
    """The page of ``f`` out of :func:`_page_query`'s rows, and the cursor of the next page."""
    more = len(rows) > f.limit
    page = list(rows[: f.limit])
    cursor = (str(page[-1].price_key), str(page[-1].hash)) if more and page else None
    return page, cursor


class Store:
    """The relay database behind an engine (thread-safe: each call takes its own connection)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # Reads run in autocommit: no BEGIN/ROLLBACK round trips around a single SELECT (on PostgreSQL each
        # round trip is a wake-up of the server process; three of them cost more than the query).
        self.reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    # -- the post path: door reads and the group-commit insert ----------------------------------------

    def door_states(self, rows: Sequence[dict[str, Any]], conn: Connection | None = None) -> dict[str, Any]:
        """:class:`~agentmarket.relay.validation.DoorState` of every row's offer hash, from three reads
        (stored offers, indexed chain events, maker counters) whatever the number of rows."""
        from .validation import DoorState

        if conn is None:
            with self.reader.connect() as own:
                return self.door_states(rows, own)
        hashes = list({r["hash"] for r in rows})
        makers_ = list({r["maker"] for r in rows})
        withdrawn = dict(
            conn.execute(select(offers.c.hash, offers.c.withdrawn).where(offers.c.hash.in_(hashes))).all()
        )
        filled: dict[str, int] = {}
        cancelled: set[str] = set()  # digests cancelled by events indexed before cancel slots (0003)
        for h, kind, value, slot in conn.execute(
            select(_ev.offer_hash, _ev.kind, func.max(_ev.value), func.max(_ev.slot))
            .where(_ev.offer_hash.in_(hashes))
            .group_by(_ev.offer_hash, _ev.kind)
        ).all():
            if kind == "filled":
                filled[h] = int(value or 0)
            elif kind == "cancelled" and slot is None:
                cancelled.add(h)
        slot_keys = _cancel_keys(conn, makers_)
        counters = dict(
            conn.execute(
                select(makers.c.address, makers.c.counter).where(makers.c.address.in_(makers_))
            ).all()
        )
        return {
            r["hash"]: DoorState(
                withdrawn=None if r["hash"] not in withdrawn else bool(withdrawn[r["hash"]]),
                filled=filled.get(r["hash"], 0),
                cancelled=r["hash"] in cancelled or (r["maker"], r["counter"], r["slot"]) in slot_keys,
                counter=int(counters.get(r["maker"]) or 0),
            )
            for r in rows
        }

    @_retry_disconnect
    def has_reputation(self, maker: str, asset: str) -> bool:
        q = select(reputation.c.count).where(reputation.c.maker == maker, reputation.c.asset == asset)
        with self.reader.connect() as conn:
            return conn.execute(q).first() is not None

    @_retry_disconnect
    def admit_offers(
        self, rows: Sequence[dict[str, Any]], door: Callable[[dict[str, Any], Any], Exception | None]
    ) -> list[bool | Exception]:
        """The group commit of the post path: in one transaction, read the door state of every row, apply
        ``door`` (None: admitted, else the error that row gets), insert the admitted rows that are not
        stored yet. Per row: True (inserted), False (already stored) or its error. Durable when this
        returns."""
        with self.engine.begin() as conn:
            states = self.door_states(rows, conn)
            verdicts: list[bool | Exception] = []
            admitted = []
            for r in rows:
                error = door(r, states[r["hash"]])
                verdicts.append(error if error is not None else True)
                if error is None:
                    admitted.append(r)
            stored = {h for h, st in states.items() if st.withdrawn is not None}
            inserted = iter(self._insert(conn, admitted, stored))
            return [next(inserted) if v is True else v for v in verdicts]

    # -- writes of the post path -----------------------------------------------------------------------

    def insert_offers(self, rows: Sequence[dict[str, Any]]) -> list[bool]:
        """Insert new offers in one transaction; returns, per row, True if inserted (False: already there).
        Committed (durable) when this returns."""
        with self.engine.begin() as conn:
            return self._insert(conn, rows)

    def import_offers(self, rows: Iterable[dict[str, Any]], chunk: int = 5_000) -> int:
        """Bulk import of ``offers`` rows from a trusted source (a backup, another relay's database, the
        bench's preload): no door validation. Inserted in ``chunk``-row transactions, then
        :meth:`analyze`. Returns how many rows were new."""
        added, batch = 0, []
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                added += sum(self.insert_offers(batch))
                batch = []
        if batch:
            added += sum(self.insert_offers(batch))
        self.analyze()
        return added

    def analyze(self) -> None:
        """Bring the book's tables to a steady state after a bulk load. PostgreSQL: ``VACUUM (ANALYZE)``
        -- the first vacuum of freshly loaded rows reads and rewrites every page (hint bits, visibility
        map); left to autovacuum it starts a minute later, in the middle of live traffic, and costs the
        queries their tail (p99 several times p50 on a 2-core host). SQLite: ``ANALYZE`` (planner
        statistics)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if self.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("VACUUM (ANALYZE) offers, changes")
            else:
                conn.exec_driver_sql("ANALYZE")

    def _insert(
        self, conn: Connection, rows: Sequence[dict[str, Any]], present: set[str] | None = None
    ) -> list[bool]:
        if not rows:
            return []
        if present is None:
            hashes = [r["hash"] for r in rows]
            present = set(conn.execute(select(offers.c.hash).where(offers.c.hash.in_(hashes))).scalars())
        fresh: dict[str, dict[str, Any]] = {}
        result = []
        for r in rows:
            new = r["hash"] not in present and r["hash"] not in fresh
            if new:
                fresh[r["hash"]] = r
            result.append(new)
        if fresh and conn.dialect.name == "postgresql":
            # COPY: psycopg's executemany sends one INSERT per row through SQLAlchemy's parameter
            # processing (~0.2 ms of the relay's CPU per row); COPY streams the rows in one command
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                with cur.copy(_COPY_OFFERS) as copy:
                    for r in fresh.values():
                        copy.write_row([r[c] for c in _OFFER_COLUMNS])
                with cur.copy("COPY changes (offer_hash, kind) FROM STDIN") as copy:
                    for h in fresh:
                        copy.write_row((h, "posted"))
        elif fresh:
            conn.execute(insert(offers), list(fresh.values()))
            conn.execute(insert(changes), [{"offer_hash": h, "kind": "posted"} for h in fresh])
        return result

    def upsert_reputation(self, maker: str, asset: str, count: int, score: float | None) -> None:
        with self.engine.begin() as conn:
            self._upsert_reputation(conn, maker, asset, count, score)

    def _upsert_reputation(
        self, conn: Connection, maker: str, asset: str, count: int, score: float | None
    ) -> None:
        key = and_(reputation.c.maker == maker, reputation.c.asset == asset)
        if conn.execute(update(reputation).where(key).values(count=count, score=score)).rowcount == 0:
            conn.execute(insert(reputation).values(maker=maker, asset=asset, count=count, score=score))

    def withdraw(self, offer_hash: str) -> bool:
        """Hide an offer at its maker's signed request (the caller checked the signature)."""
        with self.engine.begin() as conn:
            n = conn.execute(
                update(offers)
                .where(offers.c.hash == offer_hash, ~offers.c.withdrawn)
                .values(withdrawn=True, live=False)
            ).rowcount
            if n:
                conn.execute(insert(changes).values(offer_hash=offer_hash, kind="withdrawn"))
            return bool(n)

    # -- reads of the API ---------------------------------------------------------------------------------

    @_retry_disconnect
    def get(self, offer_hash: str) -> dict[str, Any] | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                select(offers, reputation.c.count.label("rep_count"), reputation.c.score.label("rep_score"))
                .select_from(
                    offers.outerjoin(
                        reputation,
                        and_(reputation.c.maker == offers.c.maker, reputation.c.asset == offers.c.asset),
                    )
                )
                .where(offers.c.hash == offer_hash)
            ).first()
        if row is None:
            return None
        return row_json(row, (int(row.rep_count or 0), row.rep_score))

    def query(self, f: Filters) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """One page of offers matching ``f``, sorted by price (then hash), and the cursor of the next page."""
        rows, cursor = self.query_rows(f)
        return [row_json(r, (int(r.rep_count or 0), r.rep_score)) for r in rows], cursor

    @_retry_disconnect
    def query_rows(self, f: Filters) -> tuple[list[Any], tuple[str, str] | None]:
        """:meth:`query` as database rows (see :func:`row_text`)."""
        with self.reader.connect() as conn:
            return _page(f, conn.execute(_page_query(f)).all())

    @_retry_disconnect
    def changes_since(self, seq: int, limit: int = 500) -> list[tuple[int, str, str]]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(changes.c.seq, changes.c.offer_hash, changes.c.kind)
                .where(changes.c.seq > seq)
                .order_by(changes.c.seq)
                .limit(limit)
            ).all()
        return [(int(s), h, k) for s, h, k in rows]

    @_retry_disconnect
    def last_seq(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(select(func.max(changes.c.seq))).scalar() or 0)

    @_retry_disconnect
    def count_live(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(offers).where(_LIVE)).scalar() or 0)

    # -- the indexer ------------------------------------------------------------------------------------------

    def indexer_cursor(self, chain_id: int, offerbook: str, start: int) -> int:
        """The next block to index (``start`` the first time). Refuses a database of another book."""
        with self.engine.begin() as conn:
            row = conn.execute(select(indexer_state).where(indexer_state.c.id == 1)).first()
            if row is None:
                conn.execute(
                    insert(indexer_state).values(
                        id=1, next_block=start, chain_id=chain_id, offerbook=offerbook
                    )
                )
                return start
            if int(row.chain_id) != chain_id or row.offerbook != offerbook:
                from ..errors import ConfigError

                raise ConfigError(
                    f"this relay database indexes OfferBook {row.offerbook} on chain {row.chain_id}, not "
                    f"{offerbook} on chain {chain_id} (fix: use another --db)"
                )
            return int(row.next_block)

    @_retry_disconnect
    def block_hashes(self, below: int, limit: int = 256) -> list[tuple[int, str]]:
        """Stored (number, hash) of indexed blocks under ``below``, newest first."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(blocks.c.number, blocks.c.hash)
                .where(blocks.c.number < below)
                .order_by(blocks.c.number.desc())
                .limit(limit)
            ).all()
        return [(int(n), h) for n, h in rows]

    def apply(
        self,
        events: Sequence[ChainEvent],
        hashes: Iterable[tuple[int, str]],
        next_block: int,
        reputations: Sequence[tuple[str, str, int, float | None]] = (),
        keep_blocks: int = 1024,
    ) -> int:
        """Fold a range of events into the book, record its block hashes and move the cursor, atomically.
        Returns how many offers changed."""
        with self.engine.begin() as conn:
            if events:
                conn.execute(
                    insert(chain_events),
                    [
                        {
                            "block": e.block,
                            "log_index": e.log_index,
                            "kind": e.kind,
                            "offer_hash": e.offer_hash,
                            "account": e.account,
                            "asset": e.asset,
                            "value": e.value,
                            "slot": e.slot,
                        }
                        for e in events
                    ],
                )
            touched_offers = {e.offer_hash for e in events if e.offer_hash is not None}
            touched_offers |= _slot_offers(
                conn,
                (
                    (str(e.account), int(e.value or 0), e.slot)
                    for e in events
                    if e.kind == "cancelled" and e.slot is not None
                ),
            )
            touched_makers = {e.account for e in events if e.kind == "counter" and e.account}
            changed = self._recompute(conn, touched_offers, touched_makers)
            for maker, asset, count, score in reputations:
                self._upsert_reputation(conn, maker, asset, count, score)
            rows = [{"number": n, "hash": h} for n, h in dict(hashes).items()]
            if rows:
                conn.execute(delete(blocks).where(blocks.c.number.in_([r["number"] for r in rows])))
                conn.execute(insert(blocks), rows)
            conn.execute(delete(blocks).where(blocks.c.number < next_block - keep_blocks))
            conn.execute(update(indexer_state).where(indexer_state.c.id == 1).values(next_block=next_block))
            return changed

    def rollback(self, to_block: int) -> tuple[int, set[tuple[str, str]]]:
        """Undo everything indexed above ``to_block`` (a reorg): events, derived offer state and block
        hashes, in one transaction. Returns (offers changed, (ratee, asset) pairs whose ratings were undone)."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                select(
                    chain_events.c.kind,
                    chain_events.c.offer_hash,
                    chain_events.c.account,
                    chain_events.c.asset,
                    chain_events.c.value,
                    chain_events.c.slot,
                ).where(chain_events.c.block > to_block)
            ).all()
            conn.execute(delete(chain_events).where(chain_events.c.block > to_block))
            touched_offers = {g.offer_hash for g in gone if g.offer_hash is not None}
            touched_offers |= _slot_offers(
                conn,
                (
                    (g.account, int(g.value), int(g.slot))
                    for g in gone
                    if g.kind == "cancelled" and g.slot is not None
                ),
            )
            touched_makers = {g.account for g in gone if g.kind == "counter" and g.account}
            rated = {(g.account, g.asset) for g in gone if g.kind == "rated" and g.account and g.asset}
            changed = self._recompute(conn, touched_offers, touched_makers)
            conn.execute(delete(blocks).where(blocks.c.number > to_block))
            conn.execute(update(indexer_state).where(indexer_state.c.id == 1).values(next_block=to_block + 1))
            return changed, rated

    def _recompute(self, conn: Connection, offer_hashes: set[str], maker_addrs: set[str]) -> int:
        """Re-derive filled/cancelled of ``offer_hashes`` and the counters (and voided flags) of
        ``maker_addrs`` from the stored events; record a change for every offer whose state moved."""
        changed: dict[str, str] = {}
        hashes = sorted(offer_hashes)
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            state: dict[str, tuple[int, bool]] = {h: (0, False) for h in chunk}
            for h, kind, value, slot in conn.execute(
                select(
                    chain_events.c.offer_hash,
                    chain_events.c.kind,
                    func.max(chain_events.c.value),
                    func.max(chain_events.c.slot),
                )
                .where(chain_events.c.offer_hash.in_(chunk))
                .group_by(chain_events.c.offer_hash, chain_events.c.kind)
            ).all():
                filled, cancelled = state[h]
                if kind == "filled":
                    state[h] = (int(value or 0), cancelled)
                elif kind == "cancelled" and slot is None:  # indexed before cancel slots: its digest only
                    state[h] = (filled, True)
            rows = conn.execute(
                select(
                    offers.c.hash,
                    offers.c.maker,
                    offers.c.counter,
                    offers.c.slot,
                    offers.c.filled,
                    offers.c.cancelled,
                ).where(offers.c.hash.in_(chunk))
            ).all()
            slot_keys = _cancel_keys(conn, {row.maker for row in rows})
            for row in rows:
                filled, cancelled = state[row.hash]
                cancelled = cancelled or (row.maker, int(row.counter), int(row.slot)) in slot_keys
                if int(row.filled) == filled and bool(row.cancelled) == cancelled:
                    continue
                conn.execute(
                    update(offers)
                    .where(offers.c.hash == row.hash)
                    .values(filled=filled, remaining=offers.c.quantity - filled, cancelled=cancelled)
                )
                changed[row.hash] = (
                    "cancelled"
                    if cancelled and not row.cancelled
                    else "filled"
                    if filled > row.filled
                    else "restored"
                )
        for maker in sorted(maker_addrs):
            counter = int(
                conn.execute(
                    select(func.max(chain_events.c.value)).where(
                        chain_events.c.kind == "counter", chain_events.c.account == maker
                    )
                ).scalar()
                or 0
            )
            if (
                conn.execute(update(makers).where(makers.c.address == maker).values(counter=counter)).rowcount
                == 0
            ):
                conn.execute(insert(makers).values(address=maker, counter=counter))
            flips = conn.execute(
                select(offers.c.hash, offers.c.voided).where(
                    offers.c.maker == maker, offers.c.voided != (offers.c.counter != counter)
                )
            ).all()
            if flips:
                conn.execute(
                    update(offers)
                    .where(offers.c.hash.in_([h for h, _ in flips]))
                    .values(voided=offers.c.counter != counter)
                )
                for h, was in flips:
                    changed[h] = "restored" if was else "voided"
        if changed:
            conn.execute(
                update(offers)
                .where(offers.c.hash.in_(list(changed)))
                .values(live=case((_LIVE, True), else_=False))
            )
            conn.execute(insert(changes), [{"offer_hash": h, "kind": k} for h, k in changed.items()])
        return len(changed)


def side_of(value: str) -> int:
    """``sell``/``buy`` (or 0/1) as the ``Side`` integer."""
    try:
        return int(Side[value.upper()]) if not value.isdigit() else int(Side(int(value)))
    except (KeyError, ValueError):
        from ..errors import InvalidInput

        raise InvalidInput(f"side must be 'sell' or 'buy', got {value!r}") from None

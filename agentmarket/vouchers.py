"""Payment-channel vouchers: EIP-712 signing and verification, and the payee's SQLite voucher store.

A voucher is the payer's EIP-712 signature over ``Voucher(bytes32 channelId, uint256 amount)`` in the
domain ``("AgentMarket PaymentChannels", "1", chainId, PaymentChannels address)``. Amounts are cumulative:
each voucher replaces the previous one, and the payee only ever needs the latest.

Digests are computed here byte-for-byte as the contract does (tests check them against
``voucherDigest`` and eth-account's ``encode_typed_data``), and signed/recovered with
:mod:`agentmarket.eip712`'s coincurve (libsecp256k1) primitives: tens of thousands of vouchers per second
instead of eth-account's hundreds.

:class:`VoucherStore` is the payee's ledger: the latest voucher of each channel is its revenue, so every
voucher is verified (signature, monotonic amount, within the deposit, channel not expired) and committed
to SQLite (WAL mode, ``synchronous=FULL`` by default) *before* :meth:`VoucherStore.accept` returns, i.e.
before the payee serves the call it pays for. A payee killed at any instant restarts with every voucher
it acknowledged.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from . import eip712
from .eip712 import (
    DOMAIN_TYPEHASH,  # noqa: F401 - re-exported: part of this module's names
    Domain,
    StaticStruct,
    fast_keccak,
    private_key,
    sign_digest,
)
from .errors import ClosePending, InvalidInput, InvalidState, PreflightError, SignatureError
from .types.channels import UINT256_MAX, Voucher
from .types.channels import bytes32 as _bytes32

DOMAIN_NAME = "AgentMarket PaymentChannels"
DOMAIN_VERSION = "1"
_FIELDS = (("channelId", "bytes32"), ("amount", "uint256"))
VOUCHER_STRUCT = StaticStruct("Voucher", _FIELDS)
CLOSE_STRUCT = StaticStruct("CooperativeClose", (*_FIELDS, ("deadline", "uint256")))
VOUCHER_TYPEHASH = VOUCHER_STRUCT.typehash
CLOSE_TYPEHASH = CLOSE_STRUCT.typehash


# -- digests -----------------------------------------------------------------------------------------


def domain_separator(
    chain_id: int, contract: str, name: str = DOMAIN_NAME, version: str = DOMAIN_VERSION
) -> bytes:
    """The EIP-712 domain separator of a PaymentChannels deployment."""
    return Domain(name, version, chain_id, contract).separator


def _typed_digest(separator: bytes, typehash: bytes, channel_id: bytes, *words: int) -> bytes:
    for word in words:
        if not 0 <= word <= UINT256_MAX:
            raise InvalidInput(f"{word} is not a uint256")
    struct_hash = fast_keccak(typehash + channel_id + b"".join(w.to_bytes(32, "big") for w in words))
    return fast_keccak(b"\x19\x01" + separator + struct_hash)


def voucher_digest(separator: bytes, channel_id: bytes | str, amount: int) -> bytes:
    """EIP-712 digest of ``Voucher(channelId, amount)`` (equals the contract's ``voucherDigest``)."""
    return _typed_digest(separator, VOUCHER_TYPEHASH, _bytes32(channel_id), int(amount))


def close_digest(separator: bytes, channel_id: bytes | str, amount: int, deadline: int) -> bytes:
    """EIP-712 digest of ``CooperativeClose(channelId, amount, deadline)`` (equals the contract's
    ``closeDigest``): consent to close at cumulative ``amount``, void after ``deadline`` (unix seconds)."""
    return _typed_digest(separator, CLOSE_TYPEHASH, _bytes32(channel_id), int(amount), int(deadline))


def typed_data(
    chain_id: int,
    contract: str,
    channel_id: bytes | str,
    amount: int,
    *,
    primary: str = "Voucher",
    deadline: int | None = None,
) -> dict[str, Any]:
    """The full EIP-712 message (for wallets that sign typed data, e.g. ``eth_signTypedData_v4``);
    ``primary="CooperativeClose"`` needs ``deadline``."""
    message: dict[str, Any] = {"channelId": _bytes32(channel_id), "amount": int(amount)}
    struct = VOUCHER_STRUCT
    if primary == CLOSE_STRUCT.name:
        if deadline is None:
            raise InvalidInput("a CooperativeClose message needs a deadline")
        struct, message["deadline"] = CLOSE_STRUCT, int(deadline)
    elif primary != VOUCHER_STRUCT.name:
        raise InvalidInput(f"unknown primary type {primary!r}")
    return eip712.typed_data(struct, Domain(DOMAIN_NAME, DOMAIN_VERSION, chain_id, contract), message)


# -- signatures --------------------------------------------------------------------------------------


def recover(digest: bytes, signature: bytes) -> str | None:
    """The address that signed ``digest``, or None for a malformed / high-s signature (as OZ ECDSA).
    Unlike :func:`agentmarket.eip712.recover` (which raises), v may also be given as 0/1."""
    try:
        return eip712.recover(digest, _v27(signature))
    except SignatureError:
        return None


def recover_raw(digest: bytes, signature: bytes) -> bytes | None:
    """:func:`recover` as 20 raw bytes (no checksum formatting: the fast path for verification)."""
    try:
        return eip712.recover_raw(digest, _v27(signature))
    except SignatureError:
        return None


def _v27(signature: bytes) -> bytes:
    """``signature`` with a 0/1 recovery id written as 27/28 (the form :mod:`agentmarket.eip712` takes)."""
    if len(signature) == 65 and signature[64] < 2:
        return signature[:64] + bytes([signature[64] + 27])
    return signature


@dataclass(frozen=True)
class VoucherDomain:
    """Where vouchers are valid: one chain and one PaymentChannels contract."""

    chain_id: int
    contract: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract", to_checksum_address(self.contract))
        object.__setattr__(self, "_separator", domain_separator(self.chain_id, self.contract))

    @property
    def separator(self) -> bytes:
        return self.__dict__["_separator"]  # type: ignore[no-any-return]

    def voucher_digest(self, channel_id: bytes | str, amount: int) -> bytes:
        return voucher_digest(self.separator, channel_id, amount)

    def close_digest(self, channel_id: bytes | str, amount: int, deadline: int) -> bytes:
        return close_digest(self.separator, channel_id, amount, deadline)

    def signer_of(self, voucher: Voucher) -> str | None:
        """The EOA that signed ``voucher`` (None when the signature is malformed)."""
        return recover(self.voucher_digest(voucher.channel_id, voucher.amount), voucher.signature)


class VoucherSigner:
    """The payer's side: signs vouchers and cooperative closes with a local key. The repr shows only the
    address; the key is never logged or serialised."""

    def __init__(self, account: Any, domain: VoucherDomain):
        self.address = to_checksum_address(account.address)
        self._key = private_key(account)
        self.domain = domain
        self._outer = b"\x19\x01" + domain.separator
        self._prefixes: dict[bytes, bytes] = {}

    def __repr__(self) -> str:
        return f"VoucherSigner(address={self.address}, chain_id={self.domain.chain_id})"

    def sign(self, channel_id: bytes | str, amount: int) -> Voucher:
        """A voucher for cumulative ``amount`` on ``channel_id``."""
        cid = _bytes32(channel_id)
        amount = int(amount)
        if not 0 <= amount <= UINT256_MAX:
            raise InvalidInput(f"{amount} is not a uint256")
        # the digest with its constant parts joined once per signer and channel (a payer signs one
        # voucher per call): keccak(0x1901 ‖ separator ‖ keccak(typehash ‖ channelId ‖ amount))
        prefix = self._prefixes.get(cid)
        if prefix is None:
            prefix = VOUCHER_TYPEHASH + cid
            if len(self._prefixes) < 1024:
                self._prefixes[cid] = prefix
        digest = fast_keccak(self._outer + fast_keccak(prefix + amount.to_bytes(32, "big")))
        return Voucher(cid, amount, sign_digest(self._key, digest))

    def sign_close(self, channel_id: bytes | str, amount: int, deadline: int) -> bytes:
        """Signature over ``CooperativeClose(channelId, amount, deadline)`` (payer or payee). A payee signs
        through :meth:`VoucherStore.record_close` first (see there)."""
        return sign_digest(self._key, self.domain.close_digest(channel_id, amount, deadline))

    def sign_for_wallet(self, wallet: str, channel_id: bytes | str, amount: int) -> Voucher:
        """A voucher for a channel whose payer is an ERC-1271 ``wallet`` this key owns (same bytes: the
        wallet checks the owner's signature over the same digest)."""
        return self.sign(channel_id, amount)


# -- the payee's voucher store -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelTerms:
    """What the payee needs to accept vouchers: parties, asset, deposit and expiry (from the chain)."""

    channel_id: bytes
    payer: str
    payee: str
    asset: str
    deposit: int
    expiry: int
    claimed: int = 0


@dataclass(frozen=True)
class StoredVoucher:
    """The latest voucher of a channel, with what has already been claimed on chain."""

    voucher: Voucher
    terms: ChannelTerms
    accepted_at: float
    claimed: int

    @property
    def unclaimed(self) -> int:
        return min(self.voucher.amount, self.terms.deposit) - self.claimed


# A verifier answers "did `payer` sign `digest` with `signature`?"; the default recovers an EOA signer.
Verifier = Callable[[str, bytes, bytes], bool]


def eoa_verifier(payer: str, digest: bytes, signature: bytes) -> bool:
    """True when the EOA ``payer`` signed ``digest``."""
    return recover_raw(digest, signature) == bytes.fromhex(payer.removeprefix("0x"))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id  BLOB PRIMARY KEY,
    chain_id    INTEGER NOT NULL,
    contract    TEXT NOT NULL,
    payer       TEXT NOT NULL,
    payee       TEXT NOT NULL,
    asset       TEXT NOT NULL,
    deposit     TEXT NOT NULL,   -- decimal: amounts exceed SQLite's 64-bit integers
    expiry      INTEGER NOT NULL,
    claimed     TEXT NOT NULL DEFAULT '0'
);
CREATE TABLE IF NOT EXISTS closes (  -- cooperative closes the payee consented to (signed), until deadline
    channel_id  BLOB NOT NULL REFERENCES channels(channel_id),
    amount      TEXT NOT NULL,
    amount_key  BLOB NOT NULL,
    deadline    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vouchers (
    channel_id  BLOB PRIMARY KEY REFERENCES channels(channel_id),
    amount      TEXT NOT NULL,
    amount_key  BLOB NOT NULL,   -- 32-byte big-endian amount: compares like the integer
    signature   BLOB NOT NULL,
    accepted_at REAL NOT NULL
);
"""


class VoucherStore:
    """SQLite ledger of the latest voucher per channel (payee side). Safe across threads and processes.

    ``durable=True`` (default) runs ``synchronous=FULL``: an accepted voucher survives a power loss, not just
    a crash. ``durable=False`` (``synchronous=NORMAL``) still survives any process crash in WAL mode.
    ``verifier`` checks signatures (default: EOA recovery; pass
    :meth:`agentmarket.clients.channels.ChannelClient.signature_verifier` for ERC-1271 payers).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        domain: VoucherDomain,
        *,
        durable: bool = True,
        verifier: Verifier | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path)
        self.domain = domain
        self.verifier = verifier or eoa_verifier
        self.clock = clock
        self._local = threading.local()
        self._durable = durable
        self._lock = threading.Lock()
        self._db().executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"VoucherStore({str(self.path)!r}, chain_id={self.domain.chain_id})"

    # -- connection ---------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")  # take the write lock first: read-check-write is atomic
            return self.db

        def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _tx(self) -> VoucherStore._Tx:
        return VoucherStore._Tx(self._db())

    # -- channels -----------------------------------------------------------------------------------

    def register(self, terms: ChannelTerms) -> None:
        """Record (or refresh after a top-up) the channel's terms; the payee must be us, the chain ours."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO channels (channel_id, chain_id, contract, payer, payee, asset, deposit, expiry, claimed)"
                " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(channel_id) DO UPDATE SET deposit=excluded.deposit,"
                " expiry=excluded.expiry",
                (
                    terms.channel_id,
                    self.domain.chain_id,
                    self.domain.contract,
                    to_checksum_address(terms.payer),
                    to_checksum_address(terms.payee),
                    to_checksum_address(terms.asset),
                    str(terms.deposit),
                    int(terms.expiry),
                    str(terms.claimed),
                ),
            )
        self.mark_claimed(terms.channel_id, terms.claimed)

    def terms(self, channel_id: bytes | str) -> ChannelTerms:
        row = (
            self._db()
            .execute(
                "SELECT channel_id, payer, payee, asset, deposit, expiry, claimed FROM channels WHERE channel_id=?",
                (_bytes32(channel_id),),
            )
            .fetchone()
        )
        if row is None:
            raise InvalidState(f"channel 0x{_bytes32(channel_id).hex()} is not registered in {self.path}")
        return ChannelTerms(bytes(row[0]), row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6]))

    # -- vouchers -----------------------------------------------------------------------------------

    def verify(
        self,
        voucher: Voucher,
        terms: ChannelTerms,
        *,
        previous: int = 0,
        min_increment: int = 1,
        now: float | None = None,
    ) -> None:
        """Raise unless ``voucher`` is acceptable: right signer and domain, at least ``min_increment`` above
        ``previous``, within the deposit, channel not expired."""
        if voucher.amount > terms.deposit:
            raise InvalidInput(f"voucher for {voucher.amount} exceeds the deposit {terms.deposit}")
        if voucher.amount < previous + max(min_increment, 1):
            raise InvalidInput(
                f"voucher for {voucher.amount} is not at least {max(min_increment, 1)} above the latest {previous}"
            )
        current = self.clock() if now is None else now
        if current > terms.expiry:
            raise InvalidState(f"channel expired at {terms.expiry} (now {int(current)})")
        digest = self.domain.voucher_digest(voucher.channel_id, voucher.amount)
        if not self.verifier(terms.payer, digest, voucher.signature):
            raise SignatureError(
                f"voucher is not signed by the payer {terms.payer} for this channel and domain"
            )

    def accept(
        self,
        voucher: Voucher,
        *,
        min_increment: int = 1,
        now: float | None = None,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> StoredVoucher:
        """Verify and durably record ``voucher`` as the channel's latest; returns only after the commit.

        ``also`` runs more SQL in the same transaction (one commit, one fsync: the gateway writes its
        charge ledger here). Raises :class:`InvalidInput` (amount not monotonic / above deposit),
        :class:`SignatureError`, :class:`InvalidState` (unknown or expired channel). Concurrent accepts
        are serialised by SQLite.
        """
        with self._tx() as db:
            stored = self._accept_in(db, voucher, min_increment, now)
            if also is not None:
                also(db)
        return stored

    def accept_many(
        self,
        items: Sequence[tuple[Voucher, int]],
        *,
        now: float | None = None,
        also: Callable[[sqlite3.Connection, list[StoredVoucher | PreflightError]], None] | None = None,
    ) -> list[StoredVoucher | PreflightError]:
        """:meth:`accept` for many ``(voucher, min_increment)`` items in one transaction (one commit:
        group commit for concurrent payers). Each item is checked on its own: a refused one takes its
        slot as the error and writes nothing; the others are committed before this returns. ``also``
        runs in the same transaction with the outcomes."""
        out: list[StoredVoucher | PreflightError] = []
        with self._tx() as db:
            for voucher, min_increment in items:
                try:
                    out.append(self._accept_in(db, voucher, min_increment, now))
                except PreflightError as exc:
                    out.append(exc)
            if also is not None:
                also(db, out)
        return out

    def _accept_in(
        self, db: sqlite3.Connection, voucher: Voucher, min_increment: int, now: float | None
    ) -> StoredVoucher:
        """Check ``voucher`` against the stored state and write it, inside the caller's transaction."""
        current = self.clock() if now is None else now
        amount_key = voucher.amount.to_bytes(32, "big")
        # One statement reads the channel, its latest voucher and whether a cooperative close below this
        # amount is still valid (the hot path of every paid call: one read, one write, one commit).
        row = db.execute(
            "SELECT c.payer, c.payee, c.asset, c.deposit, c.expiry, c.claimed, v.amount,"
            " EXISTS (SELECT 1 FROM closes k WHERE k.channel_id = c.channel_id AND k.deadline >= ?"
            " AND k.amount_key < ?) FROM channels c LEFT JOIN vouchers v ON v.channel_id = c.channel_id"
            " WHERE c.channel_id=?",
            (int(current), amount_key, voucher.channel_id),
        ).fetchone()
        if row is None:
            raise InvalidState(f"channel {voucher.channel_hex} is not registered")
        terms = ChannelTerms(
            voucher.channel_id, row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5])
        )
        previous = int(row[6]) if row[6] is not None else 0
        self.verify(voucher, terms, previous=previous, min_increment=min_increment, now=current)
        if row[7]:
            pending = db.execute(
                "SELECT amount, deadline FROM closes WHERE channel_id=? AND deadline >= ? AND amount_key < ?"
                " ORDER BY deadline DESC LIMIT 1",
                (voucher.channel_id, int(current), amount_key),
            ).fetchone()
            raise ClosePending(
                f"a cooperative close at {pending[0]} signed for channel {voucher.channel_hex} is valid"
                f" until {pending[1]}: a voucher for {voucher.amount} could be undercut by it; wait it out"
            )
        accepted_at = self.clock()
        db.execute(
            "INSERT INTO vouchers (channel_id, amount, amount_key, signature, accepted_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(channel_id) DO UPDATE SET amount=excluded.amount, amount_key=excluded.amount_key,"
            " signature=excluded.signature, accepted_at=excluded.accepted_at"
            " WHERE excluded.amount_key > vouchers.amount_key",
            (
                voucher.channel_id,
                str(voucher.amount),
                amount_key,
                voucher.signature,
                accepted_at,
            ),
        )
        return StoredVoucher(voucher, terms, accepted_at, terms.claimed)

    def record_close(self, channel_id: bytes | str, amount: int, deadline: int) -> None:
        """Record the payee's consent to close at cumulative ``amount`` until ``deadline``, before signing it.

        Raises :class:`InvalidInput` when ``amount`` is below the latest voucher held (the close would pay
        less than it). Until ``deadline`` passes, :meth:`accept` refuses vouchers above ``amount``
        (:class:`ClosePending`): the consent can be submitted by the payer at any moment until then, so
        serving against a higher voucher would be serving for nothing. Together with the contract's
        deadline check, no close can pay the payee less than the latest voucher it holds.
        """
        cid = _bytes32(channel_id)
        with self._tx() as db:
            row = db.execute("SELECT amount FROM vouchers WHERE channel_id=?", (cid,)).fetchone()
            held = int(row[0]) if row is not None else 0
            if amount < held:
                raise InvalidInput(f"close at {amount} is below the latest voucher held ({held})")
            db.execute(
                "INSERT INTO closes (channel_id, amount, amount_key, deadline) VALUES (?,?,?,?)",
                (cid, str(amount), int(amount).to_bytes(32, "big"), int(deadline)),
            )

    def latest(self, channel_id: bytes | str) -> StoredVoucher | None:
        """The latest accepted voucher of a channel (None if none was accepted yet)."""
        row = (
            self._db()
            .execute(
                "SELECT v.amount, v.signature, v.accepted_at FROM vouchers v WHERE v.channel_id=?",
                (_bytes32(channel_id),),
            )
            .fetchone()
        )
        if row is None:
            return None
        terms = self.terms(channel_id)
        return StoredVoucher(
            Voucher(_bytes32(channel_id), int(row[0]), bytes(row[1])), terms, float(row[2]), terms.claimed
        )

    def all_latest(self) -> Iterator[StoredVoucher]:
        """Every channel's latest voucher."""
        rows = self._db().execute("SELECT channel_id FROM vouchers ORDER BY channel_id").fetchall()
        for (cid,) in rows:
            stored = self.latest(bytes(cid))
            if stored is not None:
                yield stored

    def unclaimed(self) -> list[StoredVoucher]:
        """Latest vouchers worth more than what was claimed on chain: what :meth:`ChannelClient.claim_many`
        should redeem."""
        return [s for s in self.all_latest() if s.unclaimed > 0]

    def mark_claimed(self, channel_id: bytes | str, claimed: int) -> None:
        """Record the on-chain claimed total (after a claim or close). Never moves backwards."""
        with self._tx() as db:
            row = db.execute(
                "SELECT claimed FROM channels WHERE channel_id=?", (_bytes32(channel_id),)
            ).fetchone()
            if row is not None and int(row[0]) < claimed:
                db.execute(
                    "UPDATE channels SET claimed=? WHERE channel_id=?", (str(claimed), _bytes32(channel_id))
                )

    def with_claimed(self, stored: StoredVoucher, claimed: int) -> StoredVoucher:
        return replace(stored, claimed=claimed)

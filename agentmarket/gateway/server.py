"""Seller side: price routes, verify and durably store vouchers, charge, claim in batches.

:class:`PaymentGateway` is the framework-free core (thread-safe, synchronous: SQLite and the chain are
blocking); :class:`PaymentMiddleware` puts it in front of any ASGI app. Per request:

1. no ``PAYMENT-SIGNATURE`` header: ``402`` with the route's :class:`~.x402.PaymentRequired` (JSON body and
   ``PAYMENT-REQUIRED`` header);
2. a voucher: checked (scheme, network, contract, payee, asset, the channel key hashing to the channel id,
   the channel open on chain with enough time left, the payer's EIP-712 signature, the cumulative amount
   at least ``charged + in-flight + this request's maximum`` and within the deposit) and committed to the
   SQLite :class:`~agentmarket.vouchers.VoucherStore` **before** the app runs;
3. after the app answered (status < 400) the actual charge (units reported by the handler x unit price,
   at most the request's maximum) is added to the channel's charged total, which the next voucher builds
   on: per-unit pricing settles the difference on the next call. The ``PAYMENT-RESPONSE`` header reports
   ``chargedAmount`` and the channel state.

A :class:`Claimer` redeems the latest vouchers on chain with ``claimMany`` every ``claim_interval``
seconds, and at once for channels close to expiry. A ``close`` payload (the payer leaving) makes the
payee close the channel on chain at the charged total; the rest goes back to the payer.

Under the middleware the chain work is on :mod:`agentmarket.aio`: the payee's client runs on the loop
view of its chain (:func:`~agentmarket.aio.loop_chain`, through :func:`~agentmarket.aio.run_sync`), so a
channel's on-chain state (the ``channel(id)`` view), a payer's code, the claims and the closes are
JSON-RPC requests awaited on the server's event loop (``AsyncHTTPProvider``), with no worker thread; the
claimer is a task of that loop. SQLite stays synchronous: the group commit has its own thread, loading a
channel's state runs in a worker thread, and a claim round's few store writes run on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ..clients.base import erc1271_accepts
from ..clients.channels import ChannelClient
from ..errors import (
    AgentMarketError,
    ChainUnavailable,
    ClosePending,
    InvalidInput,
    InvalidState,
    SignatureError,
)
from ..types import ETH, Channel, ChannelStatus, Voucher
from ..vouchers import ChannelTerms, StoredVoucher, VoucherStore, eoa_verifier
from . import x402
from .x402 import PaymentPayload, PaymentRequired, PaymentRequirements, SettlementResponse

log = logging.getLogger("agentmarket.gateway")

UNITS_HEADER = "x-agentmarket-units"
USAGE_SCOPE_KEY = "agentmarket.usage"

_LEDGER = """
CREATE TABLE IF NOT EXISTS gateway_charges (
    channel_id BLOB PRIMARY KEY,
    charged    TEXT NOT NULL    -- decimal: the total actually charged (<= the latest voucher)
);
"""


@dataclass(frozen=True)
class Price:
    """What one request of a route costs: ``unit_price`` per ``unit``, at most ``max_units`` per request.

    Per call: ``Price(1000)``. Per output token: ``Price(10, unit="token", max_units=512)``; the handler
    reports the units it used (:func:`report_units` or the ``x-agentmarket-units`` response header).
    """

    unit_price: int
    unit: str = "call"
    max_units: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if self.unit_price <= 0 or self.max_units <= 0:
            raise InvalidInput("unit_price and max_units must be positive")

    @property
    def ceiling(self) -> int:
        """The most one request can cost (x402's ``amount``)."""
        return self.unit_price * self.max_units


class PaymentError(AgentMarketError):
    """A payment was refused; ``code`` is the x402 error code sent in the 402 body."""

    def __init__(self, code: str, message: str, *, state: dict[str, Any] | None = None):
        self.code = code
        self.state = state or {}
        super().__init__(message)


@dataclass
class _ChannelState:
    terms: ChannelTerms
    charged: int
    reserved: int = 0
    latest: Voucher | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    committing: int = 0  # vouchers of this channel in the group commit, admitted from the event loop
    committing_max: int = 0  # the largest of them


@dataclass
class _AsyncSide:
    """The gateway's :mod:`agentmarket.aio` half (made on first use)."""

    channels: ChannelClient  # the payee's client on the loop view: reads and sends awaited on the loop
    transactor: Any  # an AsyncTransactor of the payee's chain (``sent`` counts the awaited sends)


@dataclass(frozen=True)
class Admission:
    """A request admitted for payment: settle it with :meth:`PaymentGateway.settle` once served."""

    channel_id: bytes
    payer: str
    price: Price
    voucher: Voucher


def committed(state: _ChannelState, voucher: Voucher, price: Price, error: BaseException | None) -> None:
    """A loop-admitted voucher's commit is over (run in the commit thread, before the request resumes):
    end its in-flight count; on success it is the channel's latest, on refusal its reservation goes."""
    with state.lock:
        state.committing -= 1
        if error is not None:
            state.reserved -= price.ceiling
        elif state.latest is None or voucher.amount > state.latest.amount:
            state.latest = voucher


# what the voucher store refuses a voucher with, each answered by its own 402 (see PaymentGateway._refused)
_REFUSED = (SignatureError, InvalidState, InvalidInput)


class PaymentGateway:
    """The payee's side of the ``agentmarket-channel`` scheme for one PaymentChannels deployment.

    ``channels`` is the payee's :class:`ChannelClient` (its account receives the payments and sends the
    claims); ``routes`` maps ``"METHOD /path"`` or ``"/path"`` (any method) to a :class:`Price`;
    ``store_path`` is the SQLite file holding vouchers and the charge ledger (it survives restarts).
    ``min_ttl``: a channel must stay open at least this many seconds more, so its vouchers can still be
    claimed; the claimer redeems a channel once it is within ``claim_margin`` of its expiry.
    """

    def __init__(
        self,
        channels: ChannelClient,
        routes: Mapping[str, Price],
        store_path: str | Path,
        *,
        asset: str = ETH,
        min_deposit: int | None = None,
        min_ttl: int = 900,
        claim_interval: float = 30.0,
        claim_margin: int = 300,
        durable: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        self.channels = channels
        self.payee = channels.account_address
        self.asset = to_checksum_address(asset)
        self.chain_id = channels.domain.chain_id
        self.network = x402.network_of(self.chain_id)
        self.contract = channels.domain.contract
        self.routes = {k: v for k, v in routes.items()}
        self.min_deposit = min_deposit
        self.min_ttl = int(min_ttl)
        self.claim_interval = float(claim_interval)
        self.claim_margin = int(claim_margin)
        self.clock = clock
        self.store = VoucherStore(store_path, channels.domain, durable=durable, verifier=self._verify_sig)
        self.store._db().executescript(_LEDGER)
        self._states: dict[bytes, _ChannelState] = {}
        self._unsaved: dict[bytes, int] = {}
        self._lock = threading.Lock()  # creating channel states (may read the chain: held long)
        self._ledger_lock = threading.Lock()  # the unsaved charges (held briefly, also by the committer)
        self._has_code: dict[str, bool] = {}
        self._verified: dict[bytes, x402.ChannelRef] = {}  # channel keys already hashed and checked
        self.claimer = Claimer(self)
        self._committer = _GroupCommit(self)
        self.served = 0
        self._async: _AsyncSide | None = None

    def __repr__(self) -> str:
        return f"PaymentGateway(payee={self.payee}, contract={self.contract}, routes={len(self.routes)})"

    # -- the async side (agentmarket.aio) ---------------------------------------------------------------

    @property
    def aio(self) -> _AsyncSide:
        """The payee's client on the loop view of its chain (made on first use)."""
        if self._async is None:
            from ..aio import AsyncTransactor, loop_chain

            base = self.channels.chain
            client = ChannelClient(
                loop_chain(base),
                self.channels.address,
                self.channels.account,
                from_block=self.channels.from_block,
            )
            self._async = _AsyncSide(client, AsyncTransactor(base.transactor))
        return self._async

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` on the event loop with its chain I/O awaited (:func:`agentmarket.aio.run_sync`)."""
        from ..aio import run_sync

        return await run_sync(functools.partial(fn, *args, **kwargs))

    async def _onchain_async(self, cid: bytes) -> tuple[int, int, int, int]:
        """The ``channel(id)`` view (status, deposit, claimed, expiry), awaited on the loop."""
        try:
            view: tuple[int, int, int, int] = await self._run(self.aio.channels.onchain, cid)
        except AgentMarketError:
            raise
        except Exception as exc:  # the node: down, or an answer web3 could not take
            raise ChainUnavailable(f"channel read failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        return view

    async def _has_code_async(self, payer: str) -> None:
        """Look up once whether ``payer`` has code (ERC-1271), awaited on the loop, so the verifier never
        reads the chain for an EOA payer."""
        if payer not in self._has_code:
            try:
                code = await self._run(self.aio.channels.w3.eth.get_code, payer)
            except Exception as exc:
                raise ChainUnavailable(f"code read failed: {type(exc).__name__}") from None
            self._has_code[payer] = bool(bytes(code))

    async def _state_async(self, payload: PaymentPayload, state: _ChannelState | None) -> _ChannelState:
        """:meth:`_state` (and the top-up re-read of :meth:`admit`) on the loop: the chain read awaited, the
        store's SQLite work in a worker thread."""
        import anyio.to_thread

        ref = payload.channel
        view = await self._onchain_async(ref.channel_id)
        payer = to_checksum_address(ref.payer)
        await self._has_code_async(payer)
        return await anyio.to_thread.run_sync(self._load, payload, view, state)

    def _load(
        self, payload: PaymentPayload, view: tuple[int, int, int, int], state: _ChannelState | None
    ) -> _ChannelState:
        terms = self._adopt(payload.channel, view)
        self._require_ttl(terms)
        if state is not None:
            with state.lock:
                state.terms = terms
            return state
        with self._lock:
            state = self._states.get(terms.channel_id)
            if state is not None:
                state.terms = terms
                return state
            state = self._new_state(terms)
            self._states[terms.channel_id] = state
            return state

    # -- pricing ------------------------------------------------------------------------------------

    def price_for(self, method: str, path: str) -> Price | None:
        """The route's price (``"METHOD /path"`` first, then ``"/path"``), or None for a free route."""
        return self.routes.get(f"{method.upper()} {path}") or self.routes.get(path)

    def requirements(self, price: Price, *, state: dict[str, Any] | None = None) -> PaymentRequirements:
        extra: dict[str, Any] = {
            "channelContract": self.contract,
            "chainId": self.chain_id,
            "unit": price.unit,
            "unitPrice": str(price.unit_price),
            "maxUnits": price.max_units,
            "name": "AgentMarket PaymentChannels",
            "version": "1",
            "voucherType": x402.VOUCHER_TYPE,
            "minDeposit": str(self.min_deposit or price.ceiling),
            "minExpirySeconds": self.min_ttl,
        }
        if state:
            extra.update(state)
        return PaymentRequirements(self.network, price.ceiling, self.asset, self.payee, extra)

    def payment_required(
        self,
        price: Price,
        url: str,
        *,
        error: str = x402.E_REQUIRED,
        message: str = "",
        state: dict[str, Any] | None = None,
    ) -> PaymentRequired:
        resource = {"url": url, "description": price.description, "mimeType": "application/json"}
        return PaymentRequired(resource, [self.requirements(price, state=state)], error, message)

    # -- admission -----------------------------------------------------------------------------------

    def admit(self, payload: PaymentPayload, price: Price) -> Admission:
        """Check ``payload`` as payment for one request at ``price`` and store its voucher durably.

        Raises :class:`PaymentError` (with the x402 error code) when the request must not be served.
        """
        self._check_terms(payload, price)
        voucher = payload.voucher
        state = self._state(payload, voucher)
        with state.lock:
            required = self._check_amount(state, voucher, price)
            if voucher.amount > state.terms.deposit:
                state.terms = self._refresh(payload.channel)  # a top-up since we last looked?
                self._check_deposit(state, voucher)
            if state.latest is not None and voucher.amount == state.latest.amount:
                # The voucher we already hold (a retry after a lost response, or a zero-charge call):
                # it is durable already; only its signature needs checking.
                if voucher.signature != state.latest.signature:
                    self._check_signature(voucher, state.terms)
            else:
                # The ledger row written with the voucher counts this request at its maximum: a crash
                # before the settle is saved leaves the server believing the payer owes the ceiling
                # (backed by this very voucher), never less than what was served.
                try:
                    self._committer.accept(voucher, required)
                except _REFUSED as exc:
                    raise self._refused(exc, state) from None
                state.latest = voucher
            state.reserved += price.ceiling
        return Admission(voucher.channel_id, state.terms.payer, price, voucher)

    async def admit_async(self, payload: PaymentPayload, price: Price) -> Admission:
        """:meth:`admit` for a caller on an event loop (the middleware). A request on a loaded channel whose
        voucher needs no chain read is checked on the loop and waits for the group commit without holding
        a worker thread; anything that may block (a channel not loaded yet, an expiry or top-up to read from
        the chain, the channel's lock held by a thread) runs :meth:`admit` in a worker thread instead."""
        import anyio.to_thread

        voucher = payload.voucher
        self._check_terms(payload, price)
        state = self._states.get(voucher.channel_id)
        if (
            state is None
            or state.terms.expiry - self.clock() < self.min_ttl
            or voucher.amount > state.terms.deposit
        ):
            # not loaded, about to expire (extended since?) or above the deposit (topped up since?)
            state = await self._state_async(payload, state)
        if self._has_code.get(state.terms.payer) or not state.lock.acquire(blocking=False):
            # an ERC-1271 payer (its check is an eth_call) or the channel's lock held by a thread
            return await anyio.to_thread.run_sync(self.admit, payload, price)
        try:
            required = self._check_amount(state, voucher, price)
            self._check_deposit(state, voucher)
            if state.latest is not None and voucher.amount == state.latest.amount:
                if voucher.signature != state.latest.signature:
                    self._check_signature(voucher, state.terms)
                state.reserved += price.ceiling
                return Admission(voucher.channel_id, state.terms.payer, price, voucher)
            # reserved before the commit (the lock is released while it runs): a concurrent request of
            # the channel must cover this one too, as in admit()
            state.reserved += price.ceiling
            state.committing += 1
            state.committing_max = max(state.committing_max, voucher.amount)
            # queue order = commit order; the commit thread runs `committed` then resolves `pending` on
            # this loop, with one wake-up of the loop for the whole batch
            pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._committer.submit_async(
                voucher, required, pending, functools.partial(committed, state, voucher, price)
            )
        finally:
            state.lock.release()

        try:
            # shielded: a client that goes away must not cancel the commit (the voucher is stored anyway)
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            # nobody settles this request: release its reservation once the commit is done
            pending.add_done_callback(lambda f: None if f.exception() else self._release(state, price))
            raise
        except _REFUSED as exc:
            raise self._refused(exc, state) from None
        return Admission(voucher.channel_id, state.terms.payer, price, voucher)

    def _check_amount(self, state: _ChannelState, voucher: Voucher, price: Price) -> int:
        """The cumulative amount ``voucher`` must carry (charged + reserved + this request's ceiling), after
        refusing a voucher below charged + ceiling (E_MISMATCH, with the corrective state) and one that does
        not also cover the requests in flight or committing on the channel (E_BUSY). Call under the lock."""
        required = state.charged + state.reserved + price.ceiling
        if voucher.amount < state.charged + price.ceiling:
            raise PaymentError(
                x402.E_MISMATCH,
                f"voucher for {voucher.amount} is below charged {state.charged} + this request's "
                f"maximum {price.ceiling}",
                state=self._corrective(state),
            )
        if voucher.amount < required or (state.committing and voucher.amount <= state.committing_max):
            raise PaymentError(
                x402.E_BUSY, "another request on this channel is in flight; retry after it completes"
            )
        return required

    @staticmethod
    def _check_deposit(state: _ChannelState, voucher: Voucher) -> None:
        """E_EXCEEDS_BALANCE when ``voucher`` is above the channel's deposit as last read."""
        if voucher.amount > state.terms.deposit:
            raise PaymentError(
                x402.E_EXCEEDS_BALANCE,
                f"voucher for {voucher.amount} exceeds the deposit {state.terms.deposit}",
            )

    def _release(self, state: _ChannelState, price: Price) -> None:
        with state.lock:
            state.reserved -= price.ceiling

    def _refused(self, exc: Exception, state: _ChannelState) -> PaymentError:
        """The 402 of a voucher the store refused."""
        if isinstance(exc, SignatureError):
            return PaymentError(x402.E_SIGNATURE, str(exc))
        if isinstance(exc, ClosePending):  # the payee agreed to close this channel at a lower total
            return PaymentError(x402.E_CLOSE_PENDING, str(exc))
        if isinstance(exc, InvalidState):
            return PaymentError(x402.E_CHANNEL_EXPIRING, str(exc))
        return PaymentError(x402.E_MISMATCH, str(exc), state=self._corrective(state))

    def settle(self, admission: Admission, units: int | None, *, served: bool) -> SettlementResponse:
        """Charge a served request (``units`` reported by the handler; None charges the maximum) and
        release its reservation. A request that was not served (error status) is charged nothing."""
        charge, charged, state = self._charge(admission, units, served)
        return SettlementResponse(
            success=True,
            network=self.network,
            payer=admission.payer,
            extra={
                "chargedAmount": str(charge),
                "channelState": {
                    "channelId": "0x" + admission.channel_id.hex(),
                    "balance": str(state.terms.deposit),
                    "totalClaimed": str(state.terms.claimed),
                    "chargedCumulativeAmount": str(charged),
                    "signedMaxClaimable": str(state.latest.amount if state.latest else 0),
                },
            },
        )

    def settle_header(self, admission: Admission, units: int | None, *, served: bool) -> bytes:
        """:meth:`settle` as the ``PAYMENT-RESPONSE`` header value (the middleware's per-call path: the
        same bytes as ``settle(...).header()``, written without the intermediate dicts)."""
        charge, charged, state = self._charge(admission, units, served)
        return x402.paid_response_header(
            self.network,
            admission.payer,
            charge,
            admission.channel_id,
            state.terms.deposit,
            state.terms.claimed,
            charged,
            state.latest.amount if state.latest else 0,
        )

    def _charge(
        self, admission: Admission, units: int | None, served: bool
    ) -> tuple[int, int, _ChannelState]:
        """Release the request's reservation and add its charge: (charge, charged total, channel state)."""
        price = admission.price
        charge = 0
        if served:
            used = price.max_units if units is None else max(0, min(int(units), price.max_units))
            charge = used * price.unit_price
        state = self._states[admission.channel_id]
        with state.lock:
            state.reserved -= price.ceiling
            state.charged += charge
            charged = state.charged
            with self._ledger_lock:
                self._unsaved[admission.channel_id] = charged
                if served:
                    self.served += 1
        return charge, charged, state

    # -- closing ---------------------------------------------------------------------------------------

    def close_channel(
        self, payload: PaymentPayload, *, channels: ChannelClient | None = None
    ) -> SettlementResponse:
        """The payer leaves: close the channel on chain at the charged total (its zero-charge voucher),
        refunding the rest. Refused while a request of the channel is in flight. ``channels``: the payee
        client that sends (the middleware passes :attr:`aio`'s, run on the loop with its I/O awaited)."""
        client = channels or self.channels
        self._check_terms(payload, None)
        voucher = payload.voucher
        state = self._state(payload, voucher)
        with state.lock:
            if state.reserved:
                raise PaymentError(x402.E_BUSY, "a request on this channel is in flight")
            if voucher.amount != state.charged:
                raise PaymentError(
                    x402.E_MISMATCH,
                    f"a close voucher must equal the charged total {state.charged}",
                    state=self._corrective(state),
                )
            self._check_signature(voucher, state.terms)
            channel = client.channel(voucher.channel_id)
            if not channel.is_open:
                raise PaymentError(x402.E_CHANNEL_NOT_FOUND, f"channel is {channel.status.name}")
            # Close at the charged total; if a batch claim already redeemed more (the previous ceiling),
            # nothing more is taken.
            closing = voucher if min(voucher.amount, channel.deposit) > channel.claimed else None
            after = client.close(channel, closing)
            receipt = client.last_receipt
            self.store.mark_claimed(voucher.channel_id, after.claimed)
            self._save_charges()
            with self._lock:
                self._states.pop(voucher.channel_id, None)
        refunded = after.deposit - after.claimed
        return SettlementResponse(
            success=True,
            network=self.network,
            payer=after.payer,
            transaction="0x" + bytes(receipt["transactionHash"]).hex() if receipt is not None else "",
            amount=str(refunded),
            extra={
                "channelState": {
                    "channelId": after.id_hex,
                    "balance": str(after.deposit),
                    "totalClaimed": str(after.claimed),
                    "chargedCumulativeAmount": str(voucher.amount),
                    "status": after.status.name,
                }
            },
        )

    # -- claims ------------------------------------------------------------------------------------------

    def claim_due(self, *, everything: bool = False, channels: ChannelClient | None = None) -> int:
        """Redeem the latest vouchers on chain in one ``claimMany``: all unclaimed ones when
        ``everything`` (or when the claim interval is reached), else only channels near expiry.
        Returns the number of channels claimed. ``channels``: the payee client that reads and sends
        (default :attr:`channels`; the async claimer passes :attr:`aio`'s, inside ``run_sync``)."""
        client = channels or self.channels
        self._save_charges()
        now = self.clock()
        due: list[StoredVoucher] = []
        for stored in self.store.unclaimed():
            if everything or stored.terms.expiry - now <= self.claim_margin:
                due.append(stored)
        if not due:
            return 0
        chans: list[Channel] = []
        vouchers: list[Voucher] = []
        for stored in due:
            try:
                chans.append(client.channel(stored.voucher.channel_id))
                vouchers.append(stored.voucher)
            except InvalidState:
                continue
        if not vouchers:
            return 0
        try:
            result = client.claim_many(vouchers, channels=chans)
        except InvalidState as exc:  # none was claimable (closed, expired or already claimed)
            log.info("nothing claimable: %s", str(exc)[:200])
            for ch in chans:
                self.store.mark_claimed(ch.id, ch.claimed)
            return 0
        claimed = 0
        for ch, v in zip(chans, vouchers, strict=True):
            if ch.id in result.skipped:
                continue
            amount = min(v.amount, ch.deposit)
            if amount > ch.claimed:
                self.store.mark_claimed(ch.id, amount)
                state = self._states.get(ch.id)
                if state is not None:
                    state.terms = ChannelTerms(
                        ch.id, ch.payer, ch.payee, ch.asset, ch.deposit, ch.expiry, amount
                    )
                claimed += 1
        log.info("claimed %d channels (%d wei, gas %d)", claimed, result.total_paid, result.gas_used)
        return claimed

    def start(self) -> None:
        """Start the background claimer."""
        self.claimer.start()

    def stop(self, *, final_claim: bool = True, channels: ChannelClient | None = None) -> None:
        """Stop the claimer thread, save the charge ledger and (``final_claim``) redeem everything unclaimed."""
        self.claimer.stop()
        self._save_charges()
        if final_claim:
            try:
                self.claim_due(everything=True, channels=channels)
            except AgentMarketError as exc:
                log.warning("final claim failed: %s", exc)

    def start_async(self) -> None:
        """Start the claimer as a task of the running event loop (its chain I/O awaited there)."""
        self.claimer.start_async()

    async def stop_async(self, *, final_claim: bool = True) -> None:
        """:meth:`stop` on the event loop: the claimer task ends, the final claim is awaited on the loop,
        then the loop's HTTP sessions are closed."""
        from ..aio import disconnect

        await self.claimer.stop_async()
        try:
            await self._run(self.stop, final_claim=final_claim, channels=self.aio.channels)
        finally:
            with contextlib.suppress(Exception):
                await disconnect(self.channels.chain)

    # -- internals ------------------------------------------------------------------------------------------

    def _check_terms(self, payload: PaymentPayload, price: Price | None) -> None:
        accepted, ref, voucher = payload.accepted, payload.channel, payload.voucher
        if (
            self._verified.get(ref.channel_id) == ref
            and voucher.channel_id == ref.channel_id
            and accepted.scheme == x402.SCHEME
            and accepted.network == self.network
            and accepted.extra.get("channelContract") == self.contract
            and accepted.pay_to == self.payee
            and (price is None or accepted.amount == price.ceiling)
        ):
            return  # the same key as before, already hashed and checked: skip the address work
        if accepted.scheme != x402.SCHEME:
            raise PaymentError(x402.E_SCHEME, f"scheme {accepted.scheme!r} is not {x402.SCHEME!r}")
        if accepted.network != self.network:
            raise PaymentError(x402.E_NETWORK, f"network {accepted.network!r} is not {self.network!r}")
        try:
            contract = to_checksum_address(str(accepted.extra.get("channelContract", "")))
            payee, asset = to_checksum_address(ref.payee), to_checksum_address(ref.asset)
            payer = to_checksum_address(ref.payer)
        except ValueError:
            raise PaymentError(x402.E_MALFORMED, "an address in the payload is malformed") from None
        if contract != self.contract:
            raise PaymentError(x402.E_CHANNEL_MISMATCH, f"channel contract {contract} is not {self.contract}")
        if payee != self.payee or to_checksum_address(accepted.pay_to) != self.payee:
            raise PaymentError(x402.E_CHANNEL_MISMATCH, f"channel pays {payee}, not this payee {self.payee}")
        if asset != self.asset:
            raise PaymentError(x402.E_CHANNEL_MISMATCH, f"channel asset {asset} is not {self.asset}")
        cid = keccak(
            abi_encode(["address", "address", "address", "uint256"], [payer, payee, asset, ref.salt])
        )
        if cid != ref.channel_id or cid != voucher.channel_id:
            raise PaymentError(
                x402.E_CHANNEL_MISMATCH, "the channel key does not hash to the voucher's channel"
            )
        if price is not None and accepted.amount != price.ceiling:
            raise PaymentError(
                x402.E_MISMATCH, f"accepted amount {accepted.amount} is not this route's {price.ceiling}"
            )
        if len(self._verified) < 100_000:  # bounded: a flood of keys cannot grow it without limit
            self._verified[ref.channel_id] = ref

    def _state(self, payload: PaymentPayload, voucher: Voucher) -> _ChannelState:
        cid = voucher.channel_id
        state = self._states.get(cid)
        if state is not None:
            if state.terms.expiry - self.clock() < self.min_ttl:
                state.terms = self._refresh(payload.channel)  # extended since?
                self._require_ttl(state.terms)
            return state
        with self._lock:
            state = self._states.get(cid)
            if state is not None:
                return state
            try:
                terms = self.store.terms(cid)
                if terms.expiry - self.clock() < self.min_ttl:
                    terms = self._refresh(payload.channel)
            except InvalidState:
                terms = self._refresh(payload.channel)
            self._require_ttl(terms)
            state = self._new_state(terms)
            self._states[cid] = state
            return state

    def _new_state(self, terms: ChannelTerms) -> _ChannelState:
        """A channel's in-memory state from the store: its latest voucher and its saved charged total."""
        cid = terms.channel_id
        latest = self.store.latest(cid)
        row = (
            self.store._db()
            .execute("SELECT charged FROM gateway_charges WHERE channel_id=?", (cid,))
            .fetchone()
        )
        # After a restart without a saved charge, the claimed total is the floor (batch-settlement's
        # baseline); a saved charge is never older than one request per channel.
        charged = max(int(row[0]) if row else 0, terms.claimed)
        return _ChannelState(terms, charged, latest=latest.voucher if latest else None)

    def _refresh(self, ref: x402.ChannelRef) -> ChannelTerms:
        """Read the channel's state from the chain (the ``channel(id)`` view), check it, (re)register it."""
        return self._adopt(ref, self.channels.onchain(ref.channel_id))

    def _adopt(self, ref: x402.ChannelRef, view: tuple[int, int, int, int]) -> ChannelTerms:
        """Check a channel's on-chain state (status, deposit, claimed, expiry) and register its terms in the
        store. The parties come from ``ref``, which :meth:`_check_terms` proved hashes to the channel id
        with this payee and asset."""
        cid = ref.channel_id
        status, deposit, claimed, expiry = view
        if status == ChannelStatus.NONE:
            raise PaymentError(x402.E_CHANNEL_NOT_FOUND, f"no channel 0x{cid.hex()} on {self.contract}")
        if status != ChannelStatus.OPEN:
            raise PaymentError(
                x402.E_CHANNEL_NOT_FOUND, f"channel 0x{cid.hex()} is {ChannelStatus(status).name}"
            )
        if to_checksum_address(ref.payee) != self.payee or to_checksum_address(ref.asset) != self.asset:
            raise PaymentError(x402.E_CHANNEL_MISMATCH, "the channel pays another payee or asset")
        payer = to_checksum_address(ref.payer)
        self.store.register(ChannelTerms(cid, payer, self.payee, self.asset, deposit, expiry, claimed))
        return self.store.terms(cid)

    def _require_ttl(self, terms: ChannelTerms) -> None:
        left = terms.expiry - self.clock()
        if left < self.min_ttl:
            raise PaymentError(
                x402.E_CHANNEL_EXPIRING,
                f"channel expires in {int(left)}s; at least {self.min_ttl}s are required (extend it with topUp)",
            )

    def _check_signature(self, voucher: Voucher, terms: ChannelTerms) -> None:
        digest = self.channels.domain.voucher_digest(voucher.channel_id, voucher.amount)
        if not self._verify_sig(terms.payer, digest, voucher.signature):
            raise PaymentError(x402.E_SIGNATURE, f"voucher is not signed by the payer {terms.payer}")

    def _verify_sig(self, payer: str, digest: bytes, signature: bytes) -> bool:
        """EOA recovery (no RPC); ERC-1271 ``isValidSignature`` for a payer with code (looked up once)."""
        has_code = self._has_code.get(payer)
        if has_code is None:
            has_code = self._has_code[payer] = bool(
                bytes(self.channels.w3.eth.get_code(to_checksum_address(payer)))
            )
        if not has_code:
            return eoa_verifier(payer, digest, signature)
        return erc1271_accepts(self.channels.w3, payer, digest, signature)

    def _corrective(self, state: _ChannelState) -> dict[str, Any]:
        """``channelState``/``voucherState`` of a corrective 402 (batch-settlement's resynchronisation)."""
        out: dict[str, Any] = {
            "channelState": {
                "channelId": "0x" + state.terms.channel_id.hex(),
                "balance": str(state.terms.deposit),
                "totalClaimed": str(state.terms.claimed),
                "chargedCumulativeAmount": str(state.charged),
            }
        }
        if state.latest is not None:
            out["voucherState"] = {
                "signedMaxClaimable": str(state.latest.amount),
                "signature": "0x" + state.latest.signature.hex(),
            }
        return out

    def _flush_into(self, db: sqlite3.Connection, worst: dict[bytes, int] | None = None) -> None:
        """Write the charges not saved yet (inside a voucher's transaction: no extra commit); ``worst``
        overrides them with the in-flight maxima of the channels being admitted."""
        with self._ledger_lock:
            pending, self._unsaved = self._unsaved, {}
        pending.update(worst or {})
        if pending:  # one prepared statement stepped for every channel of the batch
            db.executemany(
                "INSERT INTO gateway_charges (channel_id, charged) VALUES (?, ?) ON CONFLICT(channel_id)"
                " DO UPDATE SET charged=excluded.charged",
                [(cid, str(charged)) for cid, charged in pending.items()],
            )

    def _save_charges(self) -> None:
        with self.store._tx() as tx:
            self._flush_into(tx)


class _GroupCommit:
    """Commits the vouchers of concurrent requests together: one SQLite transaction (one fsync) per batch.

    A request waits until the batch holding its voucher is committed, so "stored before served" holds for
    each; with one request at a time a batch is that request alone. Each voucher is checked on its own
    (a refused one fails only its request). The charge ledger rows (each admitted request at its
    maximum, plus settled charges not written yet) commit in the same transaction.
    """

    def __init__(self, gateway: PaymentGateway):
        self.gateway = gateway
        self._cond = threading.Condition()
        self._queue: list[tuple[Voucher, int, _Waiter]] = []
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.committed = 0

    def accept(self, voucher: Voucher, worst: int) -> None:
        """Queue ``voucher`` (its channel's ledger row becomes ``worst``); return once committed."""
        self.submit(voucher, worst).result()

    def submit(self, voucher: Voucher, worst: int) -> Future[None]:
        """:meth:`accept` without waiting: the future completes once the voucher is committed (or raises
        why the store refused it)."""
        future: Future[None] = Future()
        self._put(voucher, worst, _Waiter(future))
        return future

    def submit_async(
        self,
        voucher: Voucher,
        worst: int,
        future: asyncio.Future[None],
        hook: Callable[[BaseException | None], None],
    ) -> None:
        """:meth:`submit` for a request on an event loop: once the batch holding ``voucher`` is committed
        (or refused it), ``hook`` runs in the commit thread with the refusal (None: stored), then
        ``future`` (of the running loop) is resolved, together with the batch's other futures of that
        loop in one ``call_soon_threadsafe``: one wake-up of the loop per batch, not per request."""
        self._put(voucher, worst, _Waiter(future, future.get_loop(), hook))

    def _put(self, voucher: Voucher, worst: int, waiter: _Waiter) -> None:
        with self._cond:
            self._queue.append((voucher, worst, waiter))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agentmarket-commit", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if not self._cond.wait(timeout=5.0) and not self._queue:
                        self._thread = None  # idle: a later accept starts a new writer
                        return
                batch, self._queue = self._queue, []
            self._commit(batch)

    def _commit(self, batch: list[tuple[Voucher, int, _Waiter]]) -> None:
        gateway = self.gateway

        def ledger(db: sqlite3.Connection, outcomes: list[Any]) -> None:
            worst = {
                voucher.channel_id: amount
                for (voucher, amount, _), outcome in zip(batch, outcomes, strict=True)
                if not isinstance(outcome, Exception)
            }
            gateway._flush_into(db, worst)

        outcomes: list[Any]
        try:
            outcomes = gateway.store.accept_many(
                [(v, 1) for v, _, _ in batch], now=gateway.clock(), also=ledger
            )
        except Exception as exc:  # the commit itself failed: nothing of this batch is stored
            outcomes = [exc] * len(batch)
        else:
            self.batches += 1
        wakeups: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for (_, _, waiter), outcome in zip(batch, outcomes, strict=True):
            error = outcome if isinstance(outcome, Exception) else None
            if error is None:
                self.committed += 1
            if waiter.loop is None:
                if error is None:
                    waiter.future.set_result(None)
                else:
                    waiter.future.set_exception(error)
                continue
            if waiter.hook is not None:
                waiter.hook(error)
            wakeups.setdefault(waiter.loop, []).append((waiter.future, error))  # type: ignore[arg-type]
        for loop, results in wakeups.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, results)


@dataclass(frozen=True)
class _Waiter:
    """Who waits for a voucher's commit: a thread (a concurrent Future) or a request on ``loop``."""

    future: Future[None] | asyncio.Future[None]
    loop: asyncio.AbstractEventLoop | None = None
    hook: Callable[[BaseException | None], None] | None = None


def _resolve(results: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    """On the loop: resolve a batch's futures (one callback for all of them)."""
    for future, error in results:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class Claimer:
    """Every ``claim_interval`` seconds redeem all unclaimed vouchers in one ``claimMany``; in between,
    every few seconds, redeem channels near their expiry. Runs as a task of the server's event loop
    (:meth:`start_async`: the payee client on the loop view, its reads and send awaited) or, without a
    loop, as a thread (:meth:`start`)."""

    TICK = 2.0

    def __init__(self, gateway: PaymentGateway):
        self.gateway = gateway
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start_async(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run_async())

    async def stop_async(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # a round in flight unwinds at its next await
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_async(self) -> None:
        gateway = self.gateway
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(min(self.TICK, gateway.claim_interval))
            everything = time.monotonic() - last_full >= gateway.claim_interval
            try:
                await gateway._run(gateway.claim_due, everything=everything, channels=gateway.aio.channels)
                self.rounds += 1
            except Exception as exc:  # a failed round is retried next tick; the vouchers stay stored
                log.warning("claim round failed: %s: %s", type(exc).__name__, str(exc)[:200])
            if everything:
                last_full = time.monotonic()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="agentmarket-claimer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        last_full = time.monotonic()
        while not self._stop.wait(min(self.TICK, self.gateway.claim_interval)):
            everything = time.monotonic() - last_full >= self.gateway.claim_interval
            try:
                self.gateway.claim_due(everything=everything)
                self.rounds += 1
            except Exception as exc:  # a failed round is retried next tick; the vouchers stay stored
                log.warning("claim round failed: %s: %s", type(exc).__name__, str(exc)[:200])
            if everything:
                last_full = time.monotonic()


# -- ASGI -------------------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Usage:
    """Units a handler used in this request (per-unit routes); see :func:`report_units`."""

    def __init__(self) -> None:
        self.units: int | None = None

    def add(self, units: int) -> None:
        self.units = (self.units or 0) + int(units)


def report_units(scope_or_request: Any, units: int) -> None:
    """Report ``units`` used by this request (call from the handler before it responds). Takes an ASGI
    scope or anything with a ``.scope`` (a Starlette/FastAPI ``Request``); a free route ignores it."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    usage = scope.get(USAGE_SCOPE_KEY)
    if isinstance(usage, Usage):
        usage.add(units)


class PaymentMiddleware:
    """ASGI middleware charging the routes ``gateway`` prices; other routes pass through untouched.

    It also starts the gateway's claimer on ASGI ``lifespan`` startup and stops it (with a final claim)
    on shutdown, so ``uvicorn app:app`` runs the whole seller side.
    """

    def __init__(self, app: ASGIApp, gateway: PaymentGateway, *, manage_claimer: bool = True):
        self.app = app
        self.gateway = gateway
        self.manage_claimer = manage_claimer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:

        if scope["type"] == "lifespan" and self.manage_claimer:
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gateway = self.gateway
        price = gateway.price_for(scope["method"], scope["path"])
        if price is None:
            await self.app(scope, receive, send)
            return
        header = _header(scope, _SIGNATURE_KEY)
        if header is None:
            await _send_402(
                send, gateway.payment_required(price, _url(scope), message="no PAYMENT-SIGNATURE header")
            )
            return
        try:
            payload = PaymentPayload.from_header(header)
            if payload.type == "close":
                response = await gateway._run(gateway.close_channel, payload, channels=gateway.aio.channels)
                await _send_json(send, 200, response.to_json(), response.header())
                return
            admission = await gateway.admit_async(payload, price)
        except PaymentError as exc:
            await _send_402(
                send,
                gateway.payment_required(
                    price, _url(scope), error=exc.code, message=str(exc), state=exc.state
                ),
            )
            return
        except InvalidInput as exc:
            await _send_402(
                send, gateway.payment_required(price, _url(scope), error=x402.E_MALFORMED, message=str(exc))
            )
            return
        except AgentMarketError as exc:  # chain unreachable, a close that reverted, ...
            await _send_json(send, 503, {"error": type(exc).__name__, "message": str(exc)[:300]}, None)
            return

        usage = Usage()
        scope = dict(scope)
        scope[USAGE_SCOPE_KEY] = usage
        settled = False

        async def paid_send(message: Message) -> None:
            nonlocal settled
            if message["type"] == "http.response.start" and not settled:
                settled = True
                status = int(message["status"])
                headers = []
                units = usage.units
                for name, value in message.get("headers", []):
                    if name.lower() == _UNITS_KEY:
                        with contextlib.suppress(ValueError):
                            units = (units or 0) + int(value)
                        continue
                    headers.append((name, value))
                if price.unit == "call" and units is None:
                    units = 1
                headers.append((_RESPONSE_KEY, gateway.settle_header(admission, units, served=status < 400)))
                message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, paid_send)
        finally:
            if not settled:  # the app failed before answering: nothing served, nothing charged
                gateway.settle(admission, 0, served=False)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:

        gateway = self.gateway
        seen: set[str] = set()

        async def wrapped_receive() -> Message:
            message: Message = await receive()
            seen.add(str(message["type"]))
            if message["type"] == "lifespan.startup":
                gateway.start_async()
            elif message["type"] == "lifespan.shutdown":
                await gateway.stop_async()
            return message

        async def wrapped_send(message: Message) -> None:
            seen.add(str(message["type"]))
            await send(message)

        try:
            await self.app(scope, wrapped_receive, wrapped_send)
        except Exception:
            # The app does not speak lifespan: answer for it, from wherever it stopped.
            if "lifespan.startup" not in seen:
                await wrapped_receive()
            if "lifespan.startup.complete" not in seen:
                await send({"type": "lifespan.startup.complete"})
            if "lifespan.shutdown" not in seen:
                await wrapped_receive()
            if "lifespan.shutdown.complete" not in seen:
                await send({"type": "lifespan.shutdown.complete"})


_RESPONSE_KEY = x402.HEADER_RESPONSE.lower().encode()
_SIGNATURE_KEY = x402.HEADER_SIGNATURE.lower().encode()
_UNITS_KEY = UNITS_HEADER.encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def _url(scope: Scope) -> str:
    host = (_header(scope, b"host") or b"").decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")


async def _send_json(send: Send, status: int, body: dict[str, Any], response_header: str | None) -> None:
    import json

    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if response_header is not None:
        headers.append((x402.HEADER_RESPONSE.lower().encode(), response_header.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


async def _send_402(send: Send, required: PaymentRequired) -> None:
    import json

    body = required.to_json()
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (x402.HEADER_REQUIRED.lower().encode(), x402.encode_header(body).encode()),
    ]
    await send({"type": "http.response.start", "status": 402, "headers": headers})
    await send({"type": "http.response.body", "body": raw})

"""Client for :sol:`PaymentChannels`: open, top up, claim, close, reclaim, cooperative close, batch claims.

Every method checks the action before sending (role, state, expiry, amounts, balance, allowance, the
voucher's signature) and raises an :mod:`agentmarket.errors` pre-flight error before any gas is spent;
after sending it returns the :class:`Channel` rebuilt from the emitted events.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD

from .. import validate
from ..chain import Chain
from ..compiler import load_artifact
from ..errors import (
    ContractRevert,
    InvalidInput,
    InvalidState,
    NotAuthorized,
    SignatureError,
    decode_revert,
)
from ..logscan import get_logs
from ..reads import Read
from ..types import ETH, Channel, ChannelStatus, Voucher
from ..vouchers import VoucherDomain, VoucherSigner, VoucherStore, eoa_verifier
from .base import (  # noqa: F401 - ERC1271_MAGIC re-exported
    ERC1271_MAGIC,
    ContractClient,
    erc1271_accepts,
    require_eth,
)

if TYPE_CHECKING:
    from typing_extensions import Self

MAX_DEPOSIT = 2**104 - 1
# Default life of a cooperative-close consent: long enough to submit, short enough that a payee who signed
# one is not kept from taking higher vouchers for long (its store refuses them until the consent expires).
CLOSE_TTL = 600


@dataclass(frozen=True)
class CloseConsent:
    """One party's signed consent to close ``channel_id`` at cumulative ``amount`` until ``deadline``."""

    channel_id: bytes
    amount: int
    deadline: int
    signer: str
    signature: bytes


@dataclass(frozen=True)
class ClaimManyResult:
    """Outcome of :meth:`ChannelClient.claim_many`."""

    succeeded: int
    total_paid: int
    skipped: dict[bytes, ContractRevert] = field(default_factory=dict)
    gas_used: int = 0


def _addr(value: str, what: str) -> str:
    return validate.address(value, what)


class ChannelClient(ContractClient):
    """Acts on :sol:`PaymentChannels` as ``account`` (payer, payee, or a relayer for claims).

    ``chain`` is an :class:`agentmarket.chain.Chain`; ``address`` the contract (``suite["PaymentChannels"]``,
    a web3.py contract or its address). Like every client, ``address`` is the contract's address and
    ``account`` the acting account.
    """

    ARTIFACT = "PaymentChannels"
    EVENTS = tuple(e["name"] for e in load_artifact(ARTIFACT)["abi"] if e["type"] == "event")
    GAS_FAMILY = "channel"

    def __init__(
        self,
        chain: Chain,
        address: str | Contract,
        account: LocalAccount | None = None,
        *,
        from_block: int | None = None,
    ):
        super().__init__(chain, address, account, from_block=from_block)
        self.tx = chain.transactor
        self.domain = VoucherDomain(chain.chain_id, self.address)
        self._event_by_topic = {bytes(topic): self._events[name] for topic, name in self._topics.items()}

    def as_account(self, account: LocalAccount) -> Self:
        """Deprecated v1 name of :meth:`as_` (the name every client family uses)."""
        warnings.warn("ChannelClient.as_account is deprecated; use as_", DeprecationWarning, stacklevel=2)
        return self.as_(account)

    # -- signing --------------------------------------------------------------------------------------

    @property
    def signer(self) -> VoucherSigner:
        """Signs vouchers and cooperative closes with this client's key."""
        if self.account is None:
            raise NotAuthorized("this ChannelClient has no account to sign with (use .as_(account))")
        return VoucherSigner(self.account, self.domain)

    def sign_voucher(self, channel: Channel | bytes, amount: int) -> Voucher:
        """Payer: a voucher for cumulative ``amount`` (also works for an ERC-1271 wallet this key owns)."""
        cid = channel.id if isinstance(channel, Channel) else _id(channel)
        return self.signer.sign(cid, validate.amount(amount, "amount", maximum=MAX_DEPOSIT))

    def signature_valid(self, signer: str, digest: bytes, signature: bytes) -> bool:
        """EOA recovery, or ``isValidSignature`` when ``signer`` has code (ERC-1271), as the contract does."""
        signer = to_checksum_address(signer)
        if not bytes(self.w3.eth.get_code(signer)):
            return eoa_verifier(signer, digest, signature)
        return erc1271_accepts(self.w3, signer, digest, signature)  # a reverting wallet means "not valid"

    @property
    def signature_verifier(self) -> Any:
        """A :data:`agentmarket.vouchers.Verifier` for voucher stores (handles ERC-1271 payers)."""
        return self.signature_valid

    def verify_voucher(self, voucher: Voucher, channel: Channel | None = None) -> bool:
        """True when ``voucher`` is signed by its channel's payer for this chain and contract."""
        channel = channel or self.channel(voucher.channel_id)
        return self.signature_valid(
            channel.payer, self.domain.voucher_digest(voucher.channel_id, voucher.amount), voucher.signature
        )

    # -- reads ------------------------------------------------------------------------------------------

    def channel_id(self, payer: str, payee: str, asset: str, salt: int) -> bytes:
        from eth_abi import encode

        return bytes(
            self.w3.keccak(
                encode(["address", "address", "address", "uint256"], [payer, payee, asset, int(salt)])
            )
        )

    def channel(self, channel_id: bytes | str) -> Channel:
        """Rebuild a channel from its events (one ``eth_getLogs``). Raises :class:`InvalidState` if unknown."""
        cid = _id(channel_id)
        logs = get_logs(
            self.w3, {"address": self.address, "topics": [None, "0x" + cid.hex()]}, self.from_block
        )
        channel = self._apply(None, cid, logs)
        if channel is None:
            raise InvalidState(f"no channel 0x{cid.hex()} on {self.address}")
        return channel

    def _apply(self, channel: Channel | None, cid: bytes, logs: Any) -> Channel | None:
        """Fold this channel's events (from ``eth_getLogs`` or a receipt) into ``channel``."""
        state: dict[str, Any] | None = None
        if channel is not None:
            state = {
                k: getattr(channel, k)
                for k in (
                    "payer",
                    "payee",
                    "asset",
                    "salt",
                    "deposit",
                    "claimed",
                    "expiry",
                    "status",
                    "opened_block",
                )
            }
        for log in logs:
            if log["address"] != self.address or len(log["topics"]) < 2 or bytes(log["topics"][1]) != cid:
                continue
            event = self._event_by_topic.get(bytes(log["topics"][0]))
            if event is None:
                continue
            data = event.process_log(log)
            name, args = data["event"], data["args"]
            if name == "ChannelOpened":
                state = {
                    "payer": args["payer"],
                    "payee": args["payee"],
                    "asset": args["asset"],
                    "salt": args["salt"],
                    "deposit": args["deposit"],
                    "claimed": 0,
                    "expiry": args["expiry"],
                    "status": ChannelStatus.OPEN,
                    "opened_block": data["blockNumber"],
                }
            elif state is None:
                continue
            elif name == "ChannelToppedUp":
                state.update(deposit=args["deposit"], expiry=args["expiry"])
            elif name == "ChannelClaimed":
                state.update(claimed=args["claimed"])
            elif name == "ChannelClosed":
                state.update(claimed=args["claimed"], status=ChannelStatus.CLOSED)
            elif name == "ChannelReclaimed":
                state.update(claimed=args["claimed"], status=ChannelStatus.RECLAIMED)
        return None if state is None else Channel(cid, **state)

    def onchain(self, channel_id: bytes | str) -> tuple[ChannelStatus, int, int, int]:
        """The contract's ``channel(id)`` view: (status, deposit, claimed, expiry)."""
        status, deposit, claimed, expiry = self.tx.call(self.contract.functions.channel(_id(channel_id)))
        return ChannelStatus(status), int(deposit), int(claimed), int(expiry)

    def credit(self, account: str | None = None, asset: str = ETH) -> int:
        who = validate.address(account, "account") if account is not None else self._me()
        return int(self.tx.call(self.contract.functions.creditOf(who, validate.address(asset, "asset"))))

    # -- life cycle ----------------------------------------------------------------------------------------

    def open(
        self,
        payee: str,
        deposit: int,
        *,
        expiry: int | None = None,
        ttl: int | None = None,
        asset: str = ETH,
        salt: int | None = None,
        approve: bool = False,
    ) -> Channel:
        """Open a channel to ``payee`` with ``deposit`` until ``expiry`` (or now + ``ttl`` seconds).

        ERC-20: with ``approve`` a short allowance is raised to exactly ``deposit`` first (default: raise
        :class:`~agentmarket.errors.InsufficientAllowance`, as every client does).
        """
        payee = validate.address(payee, "payee", nonzero=True)
        asset = validate.asset(self.w3, asset)
        if payee == self._me():
            raise InvalidInput(f"payee {payee} must not be the payer", param="payee")
        deposit = validate.amount(deposit, "deposit", positive=True, maximum=MAX_DEPOSIT)
        expiry = validate.optional(validate.integer, expiry, "expiry", maximum=2**40)
        ttl = validate.optional(validate.integer, ttl, "ttl", minimum=1, maximum=2**40)
        salt = validate.optional(validate.integer, salt, "salt")
        if expiry is None and ttl is None:
            raise InvalidInput("give expiry (unix seconds) or a positive ttl", param="ttl")
        salt = secrets.randbits(64) if salt is None else salt
        me = self._me()
        cid = self.channel_id(me, payee, asset, salt)
        # the clock, the channel slot and (ETH) the payer's balance in one JSON-RPC batch
        reads = [Read.timestamp("latest"), Read.call(self.contract, "channel", cid)]
        if asset == ETH:
            reads.append(Read.balance(me))
        now, (status, *_), *balance = self.chain.transactor.read(reads)
        if expiry is None:
            assert ttl is not None  # checked above, before any read
            expiry = now + ttl
        if expiry <= now + 1 or expiry >= 2**40:
            raise InvalidInput(f"expiry {expiry} must be in the future (now {now}) and below 2^40")
        if status != ChannelStatus.NONE:
            raise InvalidState(
                f"channel 0x{cid.hex()} already exists (status {ChannelStatus(status).name}); use another salt"
            )
        if asset == ETH:
            require_eth(me, int(balance[0]), deposit)
        else:
            self._ensure_funds(asset, deposit, approve=approve)
        value = deposit if asset == ETH else 0
        receipt = self._send(
            self.contract.functions.open((self._me(), payee, asset, salt), deposit, expiry),
            value=value,
            gas_key="channel.open_eth" if asset == ETH else "channel.open_erc20",
        )
        return self._from_receipt(receipt, cid)

    def top_up(
        self,
        channel: Channel | bytes | str,
        amount: int = 0,
        *,
        new_expiry: int | None = None,
        approve: bool = False,
    ) -> Channel:
        """Payer: add ``amount`` and/or extend the expiry to ``new_expiry``."""
        amount = validate.amount(amount, "amount", maximum=MAX_DEPOSIT)
        new_expiry = validate.optional(validate.integer, new_expiry, "new_expiry", maximum=2**40)
        ch = self._resolve(channel)
        if ch.payer != self._me():
            raise NotAuthorized(f"only the payer {ch.payer} can top up")
        self._require_open(ch)
        if new_expiry is not None and new_expiry < ch.expiry:
            raise InvalidInput(f"new expiry {new_expiry} is earlier than the current {ch.expiry}")
        if amount == 0 and (new_expiry is None or new_expiry == ch.expiry):
            raise InvalidInput("nothing to change: give an amount or a later expiry")
        if ch.deposit + amount > MAX_DEPOSIT:
            raise InvalidInput("total deposit would exceed 2^104-1")
        if amount:
            self._ensure_funds(ch.asset, amount, approve=approve)
        receipt = self._send(
            self.contract.functions.topUp(ch.key, amount, new_expiry or 0),
            value=amount if ch.asset == ETH else 0,
            gas_key=_gas_key("channel.top_up", ch.asset),
        )
        return self._from_receipt(receipt, ch.id, ch)

    def claim(self, voucher: Voucher, *, channel: Channel | None = None) -> Channel:
        """Redeem ``voucher`` (anyone may send it; the payee is paid). The channel stays open."""
        ch = channel or self.channel(voucher.channel_id)
        self._check_voucher(ch, voucher)
        receipt = self._send(
            self.contract.functions.claim(ch.key, voucher.amount, voucher.signature),
            gas_key=_gas_key("channel.claim", ch.asset),
        )
        return self._from_receipt(receipt, ch.id, ch)

    def claim_many(
        self,
        vouchers: Sequence[Voucher],
        *,
        channels: Sequence[Channel] | None = None,
        preflight: bool = True,
    ) -> ClaimManyResult:
        """Redeem many vouchers in one transaction. With ``preflight`` items that would fail are dropped
        before sending (raising if none remain); items that fail on chain anyway are reported in ``skipped``."""
        if not vouchers:
            raise InvalidInput("no vouchers to claim")
        chs = list(channels) if channels is not None else [self.channel(v.channel_id) for v in vouchers]
        items, skipped_local = [], {}
        for ch, v in zip(chs, vouchers, strict=False):
            if preflight:
                try:
                    self._check_voucher(ch, v)
                except (InvalidInput, InvalidState, SignatureError) as exc:
                    skipped_local[ch.id] = exc
                    continue
            items.append((ch.key, v.amount, v.signature))
        if not items:
            raise InvalidState(
                f"none of the {len(vouchers)} vouchers can be claimed: "
                + "; ".join(str(e) for e in skipped_local.values())[:500]
            )
        receipt = self._send(
            self.contract.functions.claimMany(items),
            # a full single claim's figure per item: the contract keeps a gas reserve per payout, and an
            # ERC-20 payout costs more than the ETH one the per-channel batch figure measures
            gas_key=_gas_key("channel.claim", *(c.asset for c in chs)),
            gas_count=len(items),
        )
        skipped: dict[bytes, ContractRevert] = {}
        for data in self.contract.events.ChannelClaimSkipped().process_receipt(receipt, errors=DISCARD):
            skipped[bytes(data["args"]["channelId"])] = decode_revert(bytes(data["args"]["reason"]))
        claimed = self.contract.events.ChannelClaimed().process_receipt(receipt, errors=DISCARD)
        total = sum(int(d["args"]["paid"]) for d in claimed)
        return ClaimManyResult(len(claimed), total, skipped, int(receipt["gasUsed"]))

    def close(self, channel: Channel | bytes | str, voucher: Voucher | None = None) -> Channel:
        """Payee: redeem ``voucher`` (if it adds anything) and close; the payer gets the rest back."""
        ch = self._resolve(channel)
        if ch.payee != self._me():
            raise NotAuthorized(
                f"only the payee {ch.payee} can close; the payer uses cooperative_close or reclaim"
            )
        self._require_open(ch)
        self._require_not_expired(ch)
        amount, signature = 0, b""
        if voucher is not None:
            if voucher.channel_id != ch.id:
                raise InvalidInput("voucher is for another channel")
            if min(voucher.amount, ch.deposit) > ch.claimed:
                self._check_signature(ch, voucher)
                amount, signature = voucher.amount, voucher.signature
        receipt = self._send(
            self.contract.functions.close(ch.key, amount, signature),
            gas_key=_gas_key("channel.close", ch.asset),
        )
        return self._from_receipt(receipt, ch.id, ch)

    def close_signature(
        self,
        channel: Channel | bytes | str,
        amount: int,
        *,
        ttl: int = CLOSE_TTL,
        store: VoucherStore | None = None,
    ) -> CloseConsent:
        """This party's consent to close ``channel`` at cumulative ``amount``, valid for ``ttl`` seconds.

        The payee must pass its ``store``: the consent is refused below the latest voucher held, and
        until it expires the store refuses higher vouchers (:class:`~agentmarket.errors.ClosePending`), so
        the payer can never submit it to pay less than what the payee holds.
        """
        amount = validate.amount(amount, "amount", maximum=MAX_DEPOSIT)
        ch = self._resolve(channel)
        if self._me() not in (ch.payer, ch.payee):
            raise NotAuthorized("only the payer or the payee can sign a cooperative close")
        if amount < 0:
            raise InvalidInput("amount must be >= 0")
        if ttl <= 0:
            raise InvalidInput("ttl must be > 0 seconds")
        deadline = self.chain.now() + ttl
        if self._me() == ch.payee:
            if store is None:
                raise InvalidInput(
                    "the payee consents to a close through its VoucherStore (store=...): it checks the"
                    " latest voucher held and refuses higher ones until the consent expires"
                )
            store.record_close(ch.id, amount, deadline)
        return CloseConsent(
            ch.id, amount, deadline, self._me(), self.signer.sign_close(ch.id, amount, deadline)
        )

    def cooperative_close(
        self,
        channel: Channel | bytes | str,
        amount: int,
        *,
        payer_signature: CloseConsent | bytes = b"",
        payee_signature: CloseConsent | bytes = b"",
        deadline: int | None = None,
    ) -> Channel:
        """Close early at the agreed cumulative ``amount``. The caller's own signature is implied; pass the
        other party's :class:`CloseConsent` (a relayer passes both). ``deadline`` is taken from the
        consents; pass it only with raw signature bytes."""
        amount = validate.amount(amount, "amount", maximum=MAX_DEPOSIT)
        ch = self._resolve(channel)
        self._require_open(ch)
        deadlines = {c.deadline for c in (payer_signature, payee_signature) if isinstance(c, CloseConsent)}
        if deadline is not None:
            deadlines.add(deadline)
        if len(deadlines) != 1:
            raise InvalidInput(f"the consents must share one deadline, got {sorted(deadlines) or 'none'}")
        (deadline,) = deadlines
        now = self.chain.now()
        if now + 1 > deadline:  # the next block is at least now + 1
            raise InvalidState(f"the close consent expired at {deadline} (now {now})")
        payer_sig = _sig(payer_signature)
        payee_sig = _sig(payee_signature)
        digest = self.domain.close_digest(ch.id, amount, deadline)
        if self._me() != ch.payer and not self.signature_valid(ch.payer, digest, payer_sig):
            raise SignatureError(f"payer signature does not authorise closing at {amount} until {deadline}")
        if self._me() != ch.payee and not self.signature_valid(ch.payee, digest, payee_sig):
            raise SignatureError(f"payee signature does not authorise closing at {amount} until {deadline}")
        receipt = self._send(
            self.contract.functions.cooperativeClose(ch.key, amount, deadline, payer_sig, payee_sig),
            gas_key=_gas_key("channel.cooperative_close", ch.asset),
        )
        return self._from_receipt(receipt, ch.id, ch)

    def reclaim(self, channel: Channel | bytes | str) -> Channel:
        """After expiry (anyone): return the unclaimed rest to the payer."""
        ch = self._resolve(channel)
        self._require_open(ch)
        now = self.chain.now()
        if now + 1 <= ch.expiry:  # the next block is at least now + 1
            raise InvalidState(f"channel expires at {ch.expiry}; reclaim opens after it (now {now})")
        receipt = self._send(
            self.contract.functions.reclaim(ch.key), gas_key=_gas_key("channel.reclaim", ch.asset)
        )
        return self._from_receipt(receipt, ch.id, ch)

    def withdraw(self, asset: str = ETH, *, to: str | None = None, amount: int | None = None) -> int:
        """Pull credited payouts (from failed pushes); returns what left the contract (its ``Withdrawn``
        event). ``amount`` withdraws only that much (``withdrawPart``): the credit pays whatever the
        transfer takes, so with a token that taxes the sender, name an amount whose tax fits in it."""
        asset = validate.asset(self.w3, asset)
        to = validate.optional(validate.address, to, "to", nonzero=True)
        part = validate.optional(validate.amount, amount, "amount", positive=True)
        if self.credit(self._me(), asset) == 0:
            raise InvalidState(f"no credit in {asset} for {self._me()}")
        if part is not None:
            fn = self.contract.functions.withdrawPart(asset, _addr(to or self._me(), "to"), part)
        elif to is None:
            fn = self.contract.functions.withdraw(asset)
        else:
            fn = self.contract.functions.withdrawTo(asset, _addr(to, "to"))
        receipt = self._send(fn, gas_key="channel.withdraw")
        for log in receipt["logs"]:
            event = self._event_by_topic.get(bytes(log["topics"][0])) if log["topics"] else None
            if log["address"] == self.address and event is not None:
                data = event.process_log(log)
                if data["event"] == "Withdrawn":
                    return int(data["args"]["amount"])
        raise InvalidState(f"withdrawal of {asset} emitted no Withdrawn event")

    # -- internals ---------------------------------------------------------------------------------------

    def _resolve(self, channel: Channel | bytes | str) -> Channel:
        # always re-read: a Channel passed in may be stale (claims and top-ups by others)
        return self.channel(channel.id if isinstance(channel, Channel) else channel)

    def _from_receipt(self, receipt: Any, cid: bytes, before: Channel | None = None) -> Channel:
        """The channel after ``receipt``: ``before`` (read just before sending) plus the receipt's events."""
        after = self._apply(before, cid, receipt["logs"])
        return after if after is not None else self.channel(cid)

    def _require_open(self, ch: Channel) -> None:
        if not ch.is_open:
            raise InvalidState(f"channel {ch.id_hex} is {ch.status.name}")

    def _require_not_expired(self, ch: Channel) -> None:
        now = self.chain.now()
        if now + 1 > ch.expiry:  # the next block is at least now + 1
            raise InvalidState(f"channel {ch.id_hex} expired at {ch.expiry} (now {now})")

    def _check_signature(self, ch: Channel, voucher: Voucher) -> None:
        if not self.signature_valid(
            ch.payer, self.domain.voucher_digest(ch.id, voucher.amount), voucher.signature
        ):
            raise SignatureError(
                f"voucher is not signed by the payer {ch.payer} for this channel, chain and contract"
            )

    def _check_voucher(self, ch: Channel, voucher: Voucher) -> None:
        if voucher.channel_id != ch.id:
            raise InvalidInput("voucher is for another channel")
        self._require_open(ch)
        self._require_not_expired(ch)
        if min(voucher.amount, ch.deposit) <= ch.claimed:
            raise InvalidInput(f"voucher for {voucher.amount} adds nothing: {ch.claimed} already claimed")
        self._check_signature(ch, voucher)


def _sig(consent: CloseConsent | bytes) -> bytes:
    return consent.signature if isinstance(consent, CloseConsent) else bytes(consent)


def _id(channel_id: bytes | str) -> bytes:
    if not isinstance(channel_id, (bytes, bytearray, str)):
        raise InvalidInput(f"a channel id is 32 bytes, got {type(channel_id).__name__}", param="channel")
    if len(channel_id) not in (32, 64, 66):
        raise InvalidInput("a channel id is 32 bytes (or 0x + 64 hex digits)", param="channel")
    return validate.bytes32(channel_id, "channel", allow_none=False)


def _gas_key(key: str, *assets: str) -> str:
    """The snapshot key of a channel action: the measured ETH figure, or ``<key>_erc20`` (estimated until
    measured) when a token is paid out -- a token's transfer cost is the token's, not ours to assume."""
    return key if all(a == ETH for a in assets) else key + "_erc20"

"""PaymentChannels under random play (docs/design.md §6.1, §6.2, §6.7, §6.8, §6.9, §6.10).

Payers: two EOAs and an ERC-1271 agent wallet (it signs through its owner's key). Payees: two EOAs and
the same kind of wallet switched at random between accepting, refusing, burning all gas and
re-entering the contract when paid. Assets: ETH, a blocklist ERC-20, a 1% fee-on-transfer token, a
token that returns nothing. Rules open, top up, claim (alone and in batches), close, close
cooperatively, reclaim after expiry and withdraw credits, with vouchers that are valid or forged in
every way a replay could be tried: signed by someone else, for another channel, for another contract,
for another chain id, high-s twins of valid signatures, all-zero signatures (zero-address recovery).
Every failure is predicted (typed error and arguments), simulated, then mined to show it changes nothing.

After every step: balance == Σ open (deposit - claimed) + credits per asset, claimed <= deposit for every
channel, statuses only move forward and settle once, every view equals the model, every balance
(ETH including gas) and credit equals the model, and the channels ChannelClient folds from the events
equal the model (teardown rebuilds them from eth_getLogs once more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from helpers import Driver, as_uint, encode_call
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from machine import FOT_BPS, ChainMachine, run_machine

from agentmarket.chain import Chain
from agentmarket.clients.channels import Channel, ChannelClient, ChannelStatus
from agentmarket.deploy import Suite
from agentmarket.errors import decode_revert
from agentmarket.types import ETH
from agentmarket.vouchers import close_digest, domain_separator, sign_digest, voucher_digest

pytestmark = pytest.mark.anvil

# `make fuzz`: 300 examples x 50 steps (some end early: ~43 steps each), >= 10,000 checked steps
LONG = (300, 50)

HOUR = 3600
MINT = 10**27
MAX = 2**256 - 1
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 order
CS = ChannelStatus
SIG_KINDS = ["valid"] * 6 + ["stranger", "other_channel", "other_contract", "other_chain", "high_s", "zero"]


@dataclass
class MChannel:
    id: bytes
    key: tuple[str, str, str, int]
    status: ChannelStatus
    deposit: int
    claimed: int
    expiry: int
    # the honest payee's side, as its VoucherStore keeps it: the latest voucher it accepted and the
    # cooperative-close consents it signed (amount, deadline), which the payer keeps and may replay
    held: int = 0
    consents: list[tuple[int, int]] = field(default_factory=list)

    @property
    def payer(self) -> str:
        return self.key[0]

    @property
    def payee(self) -> str:
        return self.key[1]

    @property
    def asset(self) -> str:
        return self.key[2]


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.fast = fast = Driver(chain)
        a = chain.accounts
        self.owner, self.p1, self.p2, self.s1, self.s2, self.stranger, self.op = (
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[6],
            a[8],
        )
        self.sybil = a[7]  # a second address of the payers: relays their replays
        self.pc = suite["PaymentChannels"]
        self.client = ChannelClient(chain, self.pc, self.stranger)
        self.token = fast.deploy(self.owner, "MockERC20", "Mock USD", "mUSD", 18)
        self.fot = fast.deploy(self.owner, "FeeOnTransferToken", FOT_BPS)
        self.nrt = fast.deploy(self.owner, "NoReturnToken")
        self.wallet = fast.deploy(self.owner, "ChannelAgentWallet", self.op.address)  # payer and payee
        self.assets = [ETH, self.token.address, self.fot.address, self.nrt.address]
        self.tokens = {self.token.address: self.token, self.fot.address: self.fot, self.nrt.address: self.nrt}
        self.eoas: dict[str, LocalAccount] = {
            x.address: x
            for x in (self.owner, self.p1, self.p2, self.s1, self.s2, self.stranger, self.op, self.sybil)
        }
        self.keys = {x.address: x.key for x in self.eoas.values()}
        self.keys[self.wallet.address] = self.op.key  # the wallet approves what its owner signs
        pc = self.pc.address
        for t in self.tokens.values():
            for h in (self.p1, self.p2, self.stranger):
                self.must(self.owner, t.address, t.encode_abi("mint", args=[h.address, MINT]))
                self.must(h, t.address, t.encode_abi("approve", args=[pc, MAX]))
            self.must(self.owner, t.address, t.encode_abi("mint", args=[self.wallet.address, MINT]))
            self.must(
                self.op,
                self.wallet.address,
                self.wallet.encode_abi(
                    "execute", args=[t.address, 0, t.encode_abi("approve", args=[pc, MAX])]
                ),
            )
        self.must(
            self.op,
            self.wallet.address,
            self.wallet.encode_abi("setReentry", args=[pc, self.pc.encode_abi("withdraw", args=[ETH])]),
        )
        self.domain = domain_separator(fast.chain_id, pc)
        self.foreign_contract = domain_separator(fast.chain_id, suite["AgentEscrow"].address)
        self.foreign_chain = domain_separator(fast.chain_id + 1, pc)
        self.client.from_block = fast.block_number()
        self.holders = [
            x.address
            for x in (self.owner, self.p1, self.p2, self.s1, self.s2, self.stranger, self.op, self.sybil)
        ]
        self.holders += [self.wallet.address, pc]
        self.balance_keys = [(t, h) for t in self.tokens for h in self.holders]
        self.balance_calls = [
            (t, encode_call("balanceOf(address)", ["address"], [h])) for t, h in self.balance_keys
        ]
        self.credit_keys = [(h, x) for h in self.holders[:-1] for x in self.assets]
        self.static_calls = [(pc, encode_call("creditTotal(address)", ["address"], [x])) for x in self.assets]
        self.static_calls += [
            (pc, encode_call("creditOf(address,address)", ["address", "address"], [h, x]))
            for h, x in self.credit_keys
        ]

    def must(self, account: LocalAccount, to: str, data: Any, value: int = 0) -> None:
        assert self.fast.send(account, to, data, value).ok


class ChannelsMachine(ChainMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        self.e = self.env
        self.channels: dict[bytes, MChannel] = {}
        self.credits: dict[tuple[str, str], int] = {}
        self.blocked: set[str] = set()
        self.mode = 0  # wallet: 0 accept, 1 revert, 2 burn, 3 re-enter
        self.balances = self._read([])[1]
        self.gas_base: dict[str, int] = {}
        self.seen: dict[bytes, int] = {}
        self.settled: dict[bytes, int] = {}
        self.client_view: dict[bytes, Channel] = {}

    # -- plumbing (as in the escrow machine) ------------------------------------------------------------

    def act(
        self,
        actor: str,
        data: Any,
        value: int = 0,
        expect: tuple[str, dict[str, Any]] | None = None,
        to: str | None = None,
    ) -> Any:
        e = self.e
        to = to or e.pc.address
        if actor in e.eoas:
            signer, to_, payload = e.eoas[actor], to, data
        else:  # the wallet acts through its owner
            signer, to_, payload = e.op, actor, e.wallet.encode_abi("execute", args=[to, value, data])
        self.fast.tick()
        if expect is not None:
            err = self.fast.simulate(signer.address, to_, payload, value)
            self.assert_error(err, expect[0], expect[1])
            assert not self.fast.send(signer, to_, payload, value, tick=False).ok
            self.gas(signer.address)
            return None
        receipt = self.fast.send(signer, to_, payload, value, tick=False)
        if not receipt.ok:
            raise AssertionError(
                f"unexpected revert: {self.fast.simulate(signer.address, to_, payload, value)}"
            )
        self.gas(signer.address)
        self.balances[(signer.address, ETH)] -= value
        self._fold(receipt)
        return receipt

    def _fold(self, receipt: Any) -> None:
        """Count settlements and fold each touched channel's logs with the client's own ``_apply``."""
        logs = [lg for lg in receipt["logs"] if lg["address"] == self.e.pc.address and len(lg["topics"]) > 1]
        for cid in {bytes(lg["topics"][1]) for lg in logs}:
            folded = self.e.client._apply(self.client_view.get(cid), cid, logs)
            if folded is not None:
                self.client_view[cid] = folded
        for lg in logs:
            name = self.e.client._event_by_topic.get(bytes(lg["topics"][0]))
            if name is not None and name.event_name in ("ChannelClosed", "ChannelReclaimed"):
                cid = bytes(lg["topics"][1])
                self.settled[cid] = self.settled.get(cid, 0) + 1

    def now(self) -> int:
        return self.fast.now + 1

    @property
    def holder(self) -> str:  # type: ignore[override]
        return self.e.pc.address

    def refuses(self, asset: str, to: str) -> bool:
        if asset == ETH:
            return to == self.e.wallet.address and self.mode in (1, 2)
        return asset == self.e.token.address and to in self.blocked

    def receive(self, asset: str, frm: str, amount: int) -> int:
        """What ``_receive`` credits: ETH as sent (the balance moved with ``act``), tokens as arrived."""
        if asset == ETH:
            self.balances[(self.e.pc.address, ETH)] += amount
            return amount
        got = self.arrives(asset, amount)
        self.balances[(frm, asset)] -= amount
        self.balances[(self.e.pc.address, asset)] += got
        return got

    # -- signatures --------------------------------------------------------------------------------------

    def sign(
        self,
        ch: MChannel,
        amount: int,
        kind: str,
        *,
        close: int | None = None,
        signer: str | None = None,
    ) -> bytes:
        """A voucher signature, or with ``close`` (its deadline) a cooperative-close consent."""
        e = self.e
        signer = signer or ch.payer
        domain, cid, key = e.domain, ch.id, e.keys[signer]
        if kind == "stranger":
            key = e.stranger.key
        elif kind == "other_channel":
            cid = keccak(cid)
        elif kind == "other_contract":
            domain = e.foreign_contract
        elif kind == "other_chain":
            domain = e.foreign_chain
        elif kind == "zero":
            return b"\x00" * 65
        digest = (
            voucher_digest(domain, cid, amount) if close is None else close_digest(domain, cid, amount, close)
        )
        sig = sign_digest(bytes(key), digest)
        if kind == "high_s":
            r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
            sig = r + (N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28: the same signer, high s
        return sig

    # -- rules ----------------------------------------------------------------------------------------------

    def name(self, who: str) -> str:
        e = self.e
        return {
            "p1": e.p1.address,
            "p2": e.p2.address,
            "wallet": e.wallet.address,
            "s1": e.s1.address,
            "s2": e.s2.address,
            "stranger": e.stranger.address,
            "op": e.op.address,
            "sybil": e.sybil.address,
        }[who]

    def pick(self, i: int) -> MChannel:
        """Usually an open channel (where actions can succeed), sometimes any."""
        ids = sorted(self.channels)
        live = [c for c in ids if self.channels[c].status == CS.OPEN]
        if live and i % 4:
            return self.channels[live[(i // 4) % len(live)]]
        return self.channels[ids[i % len(ids)]]

    @rule(
        payer=st.sampled_from(["p1", "p2", "wallet"]),
        payee=st.sampled_from(["s1", "s2", "wallet", "p2"]),
        asset=st.integers(0, 3),
        amount=st.one_of(st.integers(1, 1000), st.integers(10**15, 10**18)),
        ttl=st.integers(1, 4 * HOUR),
        salt=st.integers(0, 3),
        corrupt=st.sampled_from([None] * 7 + ["not_payer", "past_expiry", "zero_amount", "wrong_value"]),
    )
    def open(
        self, payer: str, payee: str, asset: int, amount: int, ttl: int, salt: int, corrupt: str | None
    ) -> None:
        e = self.e
        key = (self.name(payer), self.name(payee), e.assets[asset], salt)
        cid = keccak(encode(["address", "address", "address", "uint256"], list(key)))
        expiry = self.now() if corrupt == "past_expiry" else self.now() + ttl
        amount = 0 if corrupt == "zero_amount" else amount
        value = amount if key[2] == ETH else 0
        if corrupt == "wrong_value":
            value = value + 1 if key[2] == ETH else 1
        sender = e.stranger.address if corrupt == "not_payer" else key[0]
        data = e.pc.encode_abi("open", args=[key, amount, expiry])
        expect = None
        if sender != key[0]:
            expect = ("ChannelUnauthorized", {"channelId": cid, "caller": sender})
        elif key[1] == key[0]:
            expect = ("ChannelInvalidParties", {"payer": key[0], "payee": key[1]})
        elif expiry <= self.now():
            expect = ("ChannelInvalidExpiry", {"expiry": expiry, "minimum": self.now() + 1})
        elif cid in self.channels:
            expect = ("ChannelAlreadyExists", {"channelId": cid})
        elif value != (amount if key[2] == ETH else 0):
            expect = ("ChannelWrongValue", {"expected": amount if key[2] == ETH else 0, "sent": value})
        elif self.arrives(key[2], amount) == 0:
            expect = ("ChannelZeroAmount", {})
        if expect:
            self.act(sender, data, value, expect)
            return
        self.act(sender, data, value)
        deposit = self.receive(key[2], key[0], amount)
        self.channels[cid] = MChannel(cid, key, CS.OPEN, deposit, 0, expiry)

    @precondition(lambda self: self.channels)
    @rule(
        i=st.integers(0, 10**6),
        amount=st.sampled_from([0, 0, 1, 10**15]),
        extend=st.sampled_from([None, None, "shorter", "same", "longer"]),
        by_payer=st.sampled_from([True] * 5 + [False]),
    )
    def top_up(self, i: int, amount: int, extend: str | None, by_payer: bool) -> None:
        e = self.e
        ch = self.pick(i)
        new_expiry = {None: 0, "shorter": ch.expiry - 1, "same": ch.expiry, "longer": ch.expiry + HOUR}[
            extend
        ]
        sender = ch.payer if by_payer else e.stranger.address
        value = amount if ch.asset == ETH else 0
        data = e.pc.encode_abi("topUp", args=[ch.key, amount, new_expiry])
        expect = None
        target = new_expiry or ch.expiry
        if ch.status != CS.OPEN:
            expect = ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)})
        elif sender != ch.payer:
            expect = ("ChannelUnauthorized", {"channelId": ch.id, "caller": sender})
        elif new_expiry and new_expiry < ch.expiry:
            expect = ("ChannelInvalidExpiry", {"expiry": new_expiry, "minimum": ch.expiry})
        elif (amount == 0 or self.arrives(ch.asset, amount) == 0) and target == ch.expiry:
            expect = ("ChannelNothingToChange", {"channelId": ch.id})
        if expect:
            self.act(sender, data, value, expect)
            return
        self.act(sender, data, value)
        ch.deposit += self.receive(ch.asset, ch.payer, amount) if amount else 0
        ch.expiry = target

    def amount_for(self, ch: MChannel, choice: int) -> int:
        return [
            ch.claimed,
            ch.claimed + 1,
            (ch.claimed + ch.deposit) // 2 + 1,
            ch.deposit,
            ch.deposit * 2,
            max(ch.claimed - 1, 0),
        ][choice]

    def claim_error(self, ch: MChannel, amount: int, kind: str) -> tuple[str, dict[str, Any]] | None:
        if ch.status != CS.OPEN:
            return ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)})
        if self.now() > ch.expiry:
            return ("ChannelExpired", {"channelId": ch.id, "expiry": ch.expiry, "now": self.now()})
        capped = min(amount, ch.deposit)
        if capped <= ch.claimed:
            return ("ChannelNothingToClaim", {"channelId": ch.id, "amount": capped, "claimed": ch.claimed})
        if kind != "valid":
            return ("ChannelInvalidSignature", {"channelId": ch.id, "signer": ch.payer})
        return None

    @precondition(lambda self: self.channels)
    @rule(
        i=st.integers(0, 10**6),
        choice=st.integers(0, 5),
        kind=st.sampled_from(SIG_KINDS),
        who=st.sampled_from(["s1", "stranger", "p1"]),
    )
    def claim(self, i: int, choice: int, kind: str, who: str) -> None:
        ch = self.pick(i)
        amount = self.amount_for(ch, choice)
        data = self.e.pc.encode_abi("claim", args=[ch.key, amount, self.sign(ch, amount, kind)])
        expect = self.claim_error(ch, amount, kind)
        if expect:
            self.act(self.name(who), data, 0, expect)
            return
        self.act(self.name(who), data)
        capped = min(amount, ch.deposit)
        paid, ch.claimed = capped - ch.claimed, capped
        self.pay(ch.asset, ch.payee, paid)

    @precondition(lambda self: self.channels)
    @rule(
        items=st.lists(
            st.tuples(st.integers(0, 10**6), st.integers(0, 5), st.sampled_from(SIG_KINDS)),
            min_size=1,
            max_size=5,
        )
    )
    def claim_many(self, items: list[tuple[int, int, str]]) -> None:
        claims, expected, pays = [], [], []
        staged: dict[bytes, int] = {}
        for i, choice, kind in items:
            ch = self.pick(i)
            amount = self.amount_for(ch, choice)
            claims.append((ch.key, amount, self.sign(ch, amount, kind)))
            saved = ch.claimed
            ch.claimed = staged.get(ch.id, ch.claimed)
            why = self.claim_error(ch, amount, kind)
            expected.append((ch.id, why[0] if why else None))
            if why is None:
                capped = min(amount, ch.deposit)
                pays.append((ch, capped - ch.claimed))
                staged[ch.id] = capped
            ch.claimed = saved
        receipt = self.act(self.e.stranger.address, self.e.pc.encode_abi("claimMany", args=[claims]))
        seen = []
        for lg in receipt["logs"]:
            ev = (
                self.e.client._event_by_topic.get(bytes(lg["topics"][0]))
                if lg["address"] == self.e.pc.address
                else None
            )
            if ev is None or ev.event_name not in ("ChannelClaimed", "ChannelClaimSkipped"):
                continue
            args = ev.process_log(lg)["args"]
            reason = (
                decode_revert(bytes(args["reason"])).error_name
                if ev.event_name == "ChannelClaimSkipped"
                else None
            )
            seen.append((bytes(lg["topics"][1]), reason))
        assert seen == expected, f"claimMany {seen} != model {expected}"
        for cid, claimed in staged.items():
            self.channels[cid].claimed = claimed
        # payouts to consecutive claims of the same (payee, asset) are pushed as one transfer
        group: tuple[str, str] | None = None
        pending = 0
        for ch, paid in pays:
            if group != (ch.payee, ch.asset):
                if group:
                    self.pay(group[1], group[0], pending)
                group, pending = (ch.payee, ch.asset), 0
            pending += paid
        if group:
            self.pay(group[1], group[0], pending)

    # -- the strategic payer: pays by voucher, keeps the payee's close consents and replays them --------

    @precondition(lambda self: self.channels)
    # small indices: these rules keep coming back to the same few open channels, so a consent, a higher
    # voucher and a replay meet on one channel within a short run
    @rule(i=st.integers(1, 7), step=st.sampled_from([1, 7, 10**15]))
    def payer_pays(self, i: int, step: int) -> None:
        """The payer hands over a voucher ``step`` above the payee's latest. The honest payee accepts it as
        its VoucherStore does: channel open and not expired, within the deposit, and no live consent of
        its own below it (the payer could submit that consent at once)."""
        ch = self.pick(i)
        amount = ch.held + step
        live_below = any(a < amount and d >= self.now() for a, d in ch.consents)
        if ch.status == CS.OPEN and self.now() <= ch.expiry and amount <= ch.deposit and not live_below:
            ch.held = amount

    @precondition(lambda self: self.channels)
    @rule(i=st.integers(1, 7), ttl=st.sampled_from([1, 60, HOUR]))
    def payee_consents(self, i: int, ttl: int) -> None:
        """The payee agrees to close at what it holds (its store refuses less), until now + ttl."""
        ch = self.pick(i)
        if ch.status == CS.OPEN:
            ch.consents.append((max(ch.held, ch.claimed), self.now() + ttl))

    @precondition(lambda self: any(c.consents for c in self.channels.values()))
    @rule(i=st.integers(0, 3), k=st.integers(0, 10**6), relayed=st.booleans())
    def payer_replays_close(self, i: int, k: int, relayed: bool) -> None:
        """The payer (or its Sybil relayer, with the payer's signature) submits any consent the payee ever
        gave, the oldest and lowest included. Must hold: the close never pays the payee less than the
        latest voucher it holds."""
        with_consents = [c for c in sorted(self.channels) if self.channels[c].consents]
        ch = self.channels[with_consents[i % len(with_consents)]]
        amount, deadline = ch.consents[k % len(ch.consents)]
        sender = self.e.sybil.address if relayed else ch.payer
        payer_sig = self.sign(ch, amount, "valid", close=deadline) if relayed else b""
        payee_sig = self.sign(ch, amount, "valid", close=deadline, signer=ch.payee)
        data = self.e.pc.encode_abi("cooperativeClose", args=[ch.key, amount, deadline, payer_sig, payee_sig])
        if ch.status != CS.OPEN:
            self.act(sender, data, 0, ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)}))
            return
        if self.now() > deadline:
            expect = ("ChannelCloseExpired", {"channelId": ch.id, "deadline": deadline, "now": self.now()})
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        self.settle(ch, max(min(amount, ch.deposit) - ch.claimed, 0), CS.CLOSED)
        assert ch.claimed >= min(ch.held, ch.deposit), f"close paid {ch.claimed}, payee held {ch.held}"

    @precondition(lambda self: any(c.status == CS.OPEN for c in self.channels.values()))
    @rule(
        i=st.integers(1, 7),
        first=st.sampled_from([1, 7]),
        ttl=st.sampled_from([1, 60, HOUR]),
        wait=st.sampled_from([0, 0, 30, 2 * HOUR]),
        second=st.sampled_from([1, 7]),
        relayed=st.booleans(),
    )
    def payer_strategy(self, i: int, first: int, ttl: int, wait: int, second: int, relayed: bool) -> None:
        """The whole play on one channel: pay, get the payee's consent, (wait,) pay more, replay the
        consent. The three rules above reach it by chance only; here every run tries it."""
        ch = self.pick(i)
        if ch.status != CS.OPEN:
            return
        self.payer_pays(i, first)
        self.payee_consents(i, ttl)
        if wait:
            self.fast.jump(wait)
        self.payer_pays(i, second)
        with_consents = [c for c in sorted(self.channels) if self.channels[c].consents]
        self.payer_replays_close(with_consents.index(ch.id), len(ch.consents) - 1, relayed)

    def settle(self, ch: MChannel, paid: int, status: ChannelStatus) -> None:
        ch.claimed += paid
        refunded = ch.deposit - ch.claimed
        ch.status = status
        self.pay(ch.asset, ch.payee, paid)
        self.pay(ch.asset, ch.payer, refunded)

    @precondition(lambda self: self.channels)
    @rule(
        i=st.integers(0, 10**6),
        choice=st.integers(0, 5),
        kind=st.sampled_from(SIG_KINDS),
        by_payee=st.sampled_from([True] * 4 + [False]),
    )
    def close(self, i: int, choice: int, kind: str, by_payee: bool) -> None:
        ch = self.pick(i)
        amount = self.amount_for(ch, choice)
        sender = ch.payee if by_payee else ch.payer
        data = self.e.pc.encode_abi("close", args=[ch.key, amount, self.sign(ch, amount, kind)])
        capped = min(amount, ch.deposit)
        expect = None
        if ch.status != CS.OPEN:
            expect = ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)})
        elif sender != ch.payee:
            expect = ("ChannelUnauthorized", {"channelId": ch.id, "caller": sender})
        elif self.now() > ch.expiry:
            expect = ("ChannelExpired", {"channelId": ch.id, "expiry": ch.expiry, "now": self.now()})
        elif capped > ch.claimed and kind != "valid":
            expect = ("ChannelInvalidSignature", {"channelId": ch.id, "signer": ch.payer})
        if expect:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        self.settle(ch, max(capped - ch.claimed, 0), CS.CLOSED)

    @precondition(lambda self: self.channels)
    @rule(
        i=st.integers(0, 10**6),
        choice=st.integers(0, 5),
        who=st.sampled_from(["payer", "payee", "stranger"]),
        payer_kind=st.sampled_from(SIG_KINDS),
        payee_kind=st.sampled_from(SIG_KINDS),
        ttl=st.sampled_from([0, 0, 600, -1]),
    )
    def cooperative_close(
        self, i: int, choice: int, who: str, payer_kind: str, payee_kind: str, ttl: int
    ) -> None:
        ch = self.pick(i)
        amount = self.amount_for(ch, choice)
        sender = {"payer": ch.payer, "payee": ch.payee, "stranger": self.e.stranger.address}[who]
        deadline = self.now() + ttl  # -1: a consent that expired a second ago
        payer_sig = self.sign(ch, amount, payer_kind, close=deadline)
        payee_sig = self.sign(ch, amount, payee_kind, close=deadline, signer=ch.payee)
        data = self.e.pc.encode_abi("cooperativeClose", args=[ch.key, amount, deadline, payer_sig, payee_sig])
        expect = None
        if ch.status != CS.OPEN:
            expect = ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)})
        elif self.now() > deadline:
            expect = ("ChannelCloseExpired", {"channelId": ch.id, "deadline": deadline, "now": self.now()})
        elif sender != ch.payer and payer_kind != "valid":
            expect = ("ChannelInvalidSignature", {"channelId": ch.id, "signer": ch.payer})
        elif sender != ch.payee and payee_kind != "valid":
            expect = ("ChannelInvalidSignature", {"channelId": ch.id, "signer": ch.payee})
        if expect:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        self.settle(ch, max(min(amount, ch.deposit) - ch.claimed, 0), CS.CLOSED)

    @precondition(lambda self: self.channels)
    @rule(i=st.integers(0, 10**6), who=st.sampled_from(["stranger", "p1", "s2"]))
    def reclaim(self, i: int, who: str) -> None:
        ch = self.pick(i)
        data = self.e.pc.encode_abi("reclaim", args=[ch.key])
        expect = None
        if ch.status != CS.OPEN:
            expect = ("ChannelNotOpen", {"channelId": ch.id, "status": int(ch.status)})
        elif self.now() <= ch.expiry:
            expect = ("ChannelNotExpired", {"channelId": ch.id, "expiry": ch.expiry, "now": self.now()})
        if expect:
            self.act(self.name(who), data, 0, expect)
            return
        self.act(self.name(who), data)
        self.settle(ch, 0, CS.RECLAIMED)

    @rule(
        who=st.sampled_from(["p1", "p2", "s1", "s2", "wallet"]),
        asset=st.integers(0, 3),
        to_self=st.booleans(),
    )
    def withdraw(self, who: str, asset: int, to_self: bool) -> None:
        e = self.e
        account, a = self.name(who), e.assets[asset]
        to = account if to_self else e.op.address
        data = e.pc.encode_abi("withdraw" if to_self else "withdrawTo", args=[a] if to_self else [a, to])
        amount = self.credits.get((account, a), 0)
        if amount == 0:
            self.act(account, data, 0, ("CreditsNothingToWithdraw", {"account": account, "asset": a}))
        elif self.refuses(a, to):
            self.act(account, data, 0, ("CreditsTransferFailed", {"asset": a, "to": to, "amount": amount}))
        else:
            self.act(account, data)
            self.credits[(account, a)] = 0
            self.move_out(a, to, amount)

    @rule(mode=st.integers(0, 3))
    def wallet_mode(self, mode: int) -> None:
        e = self.e
        self.act(e.op.address, e.wallet.encode_abi("setMode", args=[mode]), to=e.wallet.address)
        self.mode = mode

    @rule(who=st.sampled_from(["p1", "s1", "s2", "wallet"]), blocked=st.booleans())
    def block_payee(self, who: str, blocked: bool) -> None:
        e = self.e
        account = self.name(who)
        self.act(
            e.owner.address, e.token.encode_abi("setBlocked", args=[account, blocked]), to=e.token.address
        )
        (self.blocked.add if blocked else self.blocked.discard)(account)

    @rule(seconds=st.one_of(st.integers(1, 120), st.sampled_from([HOUR, 3 * HOUR])))
    def wait(self, seconds: int) -> None:
        self.fast.jump(seconds)

    @precondition(lambda self: self.channels)
    @rule(i=st.integers(0, 10**6), offset=st.sampled_from([-1, 0, 1]))
    def wait_for_expiry(self, i: int, offset: int) -> None:
        target = self.pick(i).expiry + offset
        if target - 1 > self.fast.now:
            self.fast.jump(target - 1 - self.fast.now)

    # -- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def solvent_and_views_agree(self) -> None:
        self.count_step()
        e = self.e
        ids = sorted(self.channels)
        calls = list(e.static_calls) + [
            (e.pc.address, encode_call("channel(bytes32)", ["bytes32"], [i])) for i in ids
        ]
        raw, balances = self._read(calls)
        n = len(e.assets)
        for k, a in enumerate(e.assets):
            credits = as_uint(raw[k])
            assert credits == sum(v for (_, x), v in self.credits.items() if x == a)
            locked = sum(
                c.deposit - c.claimed for c in self.channels.values() if c.asset == a and c.status == CS.OPEN
            )
            assert balances[(e.pc.address, a)] == locked + credits, f"insolvent in {a}"
        for k, key in enumerate(e.credit_keys):
            assert as_uint(raw[n + k]) == self.credits.get(key, 0), f"credit {key}"
        for key, value in balances.items():
            assert value == self.balances[key], f"balance {key}: chain {value}, model {self.balances[key]}"
        off = n + len(e.credit_keys)
        for k, cid in enumerate(ids):
            ch = self.channels[cid]
            status, deposit, claimed, expiry = (as_uint(raw[off + k], j) for j in range(4))
            assert (status, deposit, claimed, expiry) == (
                int(ch.status),
                ch.deposit,
                ch.claimed,
                ch.expiry,
            ), f"channel {cid.hex()}: chain {(status, deposit, claimed, expiry)}, model {ch}"
            assert claimed <= deposit  # §6.8
            assert status >= self.seen.get(cid, 0) and (
                self.seen.get(cid, 1) == 1 or status == self.seen[cid]
            )
            self.seen[cid] = status
            assert self.settled.get(cid, 0) == (0 if ch.status == CS.OPEN else 1)
            view = self.client_view[cid]
            assert (view.status, view.deposit, view.claimed, view.expiry, view.key) == (
                ch.status,
                ch.deposit,
                ch.claimed,
                ch.expiry,
                ch.key,
            ), f"client view {view} != model {ch}"

    def teardown(self) -> None:
        try:
            for cid, ch in self.channels.items():
                rebuilt = self.e.client.channel(cid)
                assert (rebuilt.status, rebuilt.deposit, rebuilt.claimed, rebuilt.expiry) == (
                    ch.status,
                    ch.deposit,
                    ch.claimed,
                    ch.expiry,
                )
        finally:
            super().teardown()


@pytest.mark.anvil
def test_channels_machine(request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite) -> None:
    ChannelsMachine.env = Env(anvil, anvil_suite)
    run_machine(request, ChannelsMachine, ChannelsMachine.env.fast, long=LONG)

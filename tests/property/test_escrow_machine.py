"""AgentEscrow under random play (docs/design.md §6.1, §6.2, §6.9, §6.10).

Actors: two buyers, two EOA sellers and three contract sellers (one refuses ETH, one burns all gas, one
re-enters the escrow when paid), an arbiter, a market, a stranger. Assets: ETH, a plain ERC-20 with a
blocklist, a 1% fee-on-transfer token and a USDT-like token that returns nothing. Rules create and
settle deals along every path, jump time (also to exactly a deadline - 1, at, + 1), donate tokens,
block payees, and try actions that must fail: each failure is predicted from the model (the typed
error and its arguments), simulated, then mined to show it changes nothing.

The money model follows contracts/libraries/Credits.sol to the wei: while the escrow holds more of a token
than its books (a donation), every payout, withdrawal and fee collection pays held / owed of its claim
(``machine.share``, the pending payouts of one settlement as ``_share`` counts them: ``machine.Books``), a
refused payout is credited whole, and a market deal counts the surplus first (``_receiveFromMarket``).

After every step: per-asset solvency (balance == locked + credits + fees + the surplus not paid out yet) with
each figure equal to the model's, every actor's balance in every asset equal to the model's (ETH
including gas paid), every credit, every deal's on-chain status and terms, states only moving forward,
at most one settlement per deal, and the deals EscrowClient rebuilds from events equal to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from helpers import Driver, as_uint, encode_call
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from machine import FOT_BPS, Books, ChainMachine, run_machine, share, withdrawal

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.errors import decode_revert
from agentmarket.types import BPS, ETH, ZERO_ADDRESS, Deal, DealState, DealTerms, Settlement, protocol_fee

pytestmark = pytest.mark.anvil

HOUR = 3600
MINT = 10**27
MAX = 2**256 - 1
S = DealState
SETTLED = (
    "DealAccepted",
    "DealFinalized",
    "DisputeResolved",
    "DisputeDefaulted",
    "DealRefunded",
    "DealCancelled",
    "DealRejected",
)


@dataclass
class MDeal:
    id: int
    terms: DealTerms
    state: DealState
    submitted_at: int = 0
    buyer_c: bool = False
    seller_c: bool = False
    released: int = 0
    settlement: Settlement | None = None
    history: list[str] = field(default_factory=list)


class Env:
    """Accounts, contracts and hostile receivers, set up once per test (inside the test's snapshot)."""

    def __init__(self, chain: Chain, suite: Suite):
        self.fast = fast = Driver(chain)
        a = chain.accounts
        self.owner, self.b1, self.b2, self.s1, self.s2, self.arb, self.stranger, self.market, self.op = a[:9]
        self.escrow = suite["AgentEscrow"]
        self.client = EscrowClient.from_suite(suite)
        self.fee_bps = self.client.fee_bps
        self.fee_recipient = self.client.fee_recipient
        self.token = fast.deploy(self.owner, "MockERC20", "Mock USD", "mUSD", 18)
        self.fot = fast.deploy(self.owner, "FeeOnTransferToken", FOT_BPS)
        self.nrt = fast.deploy(self.owner, "NoReturnToken")
        self.rev = fast.deploy(self.owner, "RevertingReceiver")
        self.burn = fast.deploy(self.owner, "GasBurningReceiver")
        self.reent = fast.deploy(self.owner, "ReenteringReceiver")
        self.assets = [ETH, self.token.address, self.fot.address, self.nrt.address]
        self.tokens = {self.token.address: self.token, self.fot.address: self.fot, self.nrt.address: self.nrt}
        self.eoas: dict[str, LocalAccount] = {x.address: x for x in a[:9]}
        self.contracts = {c.address: c for c in (self.rev, self.burn, self.reent)}
        self.refuses_eth = {self.rev.address, self.burn.address}
        esc = self.escrow.address
        holders = [self.b1, self.b2, self.s1, self.s2, self.market, self.stranger, self.op]
        for t in self.tokens.values():
            for h in holders:
                self.must(self.owner, t.address, t.encode_abi("mint", args=[h.address, MINT]))
                self.must(h, t.address, t.encode_abi("approve", args=[esc, MAX]))
            for c in self.contracts.values():
                self.must(self.owner, t.address, t.encode_abi("mint", args=[c.address, MINT]))
                self.must(
                    self.op,
                    c.address,
                    c.encode_abi("execute", args=[t.address, t.encode_abi("approve", args=[esc, MAX])]),
                )
        self.must(self.owner, esc, self.escrow.encode_abi("setMarket", args=[self.market.address, True]))
        # the re-entering seller calls back into a guarded entry point when paid in ETH
        self.must(
            self.owner,
            self.reent.address,
            self.reent.encode_abi("arm", args=[esc, self.escrow.encode_abi("collectFees", args=[ETH])]),
        )
        self.from_block = fast.block_number()  # setup blocks hold no deal events
        # what the invariants read after every step, encoded once
        watch = [
            self.b1,
            self.b2,
            self.s1,
            self.s2,
            self.arb,
            self.stranger,
            self.market,
            self.op,
            self.owner,
        ]
        self.holders = [x.address for x in watch] + list(self.contracts) + [esc]
        self.balance_keys = [(t, h) for t in self.tokens for h in self.holders]
        self.balance_calls = [
            (t, encode_call("balanceOf(address)", ["address"], [h])) for t, h in self.balance_keys
        ]
        names = (self.b1, self.b2, self.s1, self.s2, self.rev, self.burn, self.reent, self.arb, self.stranger)
        self.credit_keys = [(x.address, a) for x in names for a in self.assets]
        self.static_calls = [(esc, encode_call("totals(address)", ["address"], [a])) for a in self.assets]
        self.static_calls += [
            (esc, encode_call("creditOf(address,address)", ["address", "address"], [x, a]))
            for x, a in self.credit_keys
        ]
        self.client.from_block = self.from_block

    def must(self, account: LocalAccount, to: str, data: Any, value: int = 0) -> None:
        assert self.fast.send(account, to, data, value).ok


_ENCODED: dict[Any, Any] = {}


class EscrowMachine(ChainMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        e = self.env
        self.e = e
        self.deals: dict[int, MDeal] = {}
        self.first_id = as_uint(self.fast.calls([(e.escrow.address, encode_call("nextDealId()", [], []))])[0])
        self.next_id = self.first_id
        self.locked = {a: 0 for a in e.assets}
        self.fees = {a: 0 for a in e.assets}
        self.books = Books()  # Credits._share's pending payouts (transient: cleared by every transaction)
        self.credits: dict[tuple[str, str], int] = {}
        self.blocked: set[str] = set()
        self.balances = self._read_balances()
        self.gas_base = dict(self.fast.gas_spent)
        self.seen_state: dict[int, int] = {}
        self.settlements: dict[int, int] = {}
        self.client_view: dict[int, Deal] = {}

    # -- plumbing -------------------------------------------------------------------------------------

    def _read_balances(self) -> dict[tuple[str, str], int]:
        return self._read([])[1]

    def route(
        self, actor: str, data: bytes | str, value: int = 0, to: str | None = None
    ) -> tuple[LocalAccount, str, Any]:
        """(signer, to, data): EOAs call directly, contract actors through the operator's ``execute``."""
        e = self.e
        to = to or e.escrow.address
        if actor in e.eoas:
            return e.eoas[actor], to, data
        c = e.contracts[actor]
        return e.op, actor, c.encode_abi("execute", args=[to, data])

    def act(
        self,
        actor: str,
        data: Any,
        value: int = 0,
        expect: tuple[str, dict[str, Any]] | None = None,
        to: str | None = None,
    ) -> Any:
        """Predicted failure: simulate (typed error), then mine it and see it fail. Otherwise send it."""
        self.books.end_transaction()
        signer, to_, payload = self.route(actor, data, value, to)
        self.fast.tick()
        if expect is not None:
            err = self.fast.simulate(signer.address, to_, payload, value)
            self.assert_error(err, expect[0], expect[1])
            receipt = self.fast.send(signer, to_, payload, value, tick=False)
            assert not receipt.ok
            self.gas(signer.address)
            return None
        receipt = self.fast.send(signer, to_, payload, value, tick=False)
        if not receipt.ok:
            why = self.fast.simulate(signer.address, to_, payload, value)
            raise AssertionError(f"unexpected revert at {self.fast.now}: {why}")
        self.gas(signer.address)
        self.balances[(signer.address, ETH)] -= value
        self._count_settlements(receipt)
        return receipt

    def _count_settlements(self, receipt: Any) -> None:
        """Count settlement events per deal and fold the logs into the client's view (as ``_fold`` does)."""
        client = self.e.client
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        for log in receipt["logs"]:
            if log["address"] != self.e.escrow.address:
                continue
            decoded = client._decode(log)
            if decoded is None:
                continue
            name, event = decoded
            deal_id = int(event["args"].get("dealId", 0))
            if name in SETTLED:
                self.settlements[deal_id] = self.settlements.get(deal_id, 0) + 1
            if name == "DealCreated":
                self.client_view[deal_id] = client._created(event, tx)
            elif deal_id in self.client_view:
                self.client_view[deal_id] = client._apply(self.client_view[deal_id], name, event["args"], tx)

    def now(self) -> int:
        """Timestamp of the next transaction."""
        return self.fast.now + 1

    # -- money model ------------------------------------------------------------------------------------

    def pull(self, asset: str, frm: str, value: int) -> int:
        """``frm`` pays ``value`` into the escrow; what arrived."""
        got = self.arrives(asset, value)
        self.balances[(frm, asset)] -= value
        self.balances[(self.e.escrow.address, asset)] += got
        return got

    @property
    def holder(self) -> str:  # type: ignore[override]
        return self.e.escrow.address

    def refuses(self, asset: str, to: str) -> bool:
        if asset == ETH:
            return to in self.e.refuses_eth
        return asset == self.e.token.address and to in self.blocked

    def unlock(self, asset: str, value: int, fee: int) -> None:
        """``_unlock``: the payouts that follow (``value - fee``) are noted pending for ``_share``."""
        self.locked[asset] -= value
        assert self.locked[asset] >= 0
        self.fees[asset] += fee
        if asset != ETH:
            self.books.note_pending(asset, value - fee)

    def owed(self, asset: str) -> int:
        """The escrow's books of ``asset`` (``_owed``: locked + credits + fees, one word on chain)."""
        credits = sum(v for (_, a), v in self.credits.items() if a == asset)
        return self.locked[asset] + credits + self.fees[asset]

    def held(self, asset: str) -> int:
        return self.balances[(self.e.escrow.address, asset)]

    def surplus(self, asset: str) -> int:
        """What the escrow holds beyond its books (donations not paid out yet); never negative here: no
        token in this machine takes coins from the escrow (no rebase down, no sender tax), and a share
        rounds down, so the ``AssetDeficit`` refusal of every pull cannot be reached."""
        return self.held(asset) - self.owed(asset)

    def payout(self, asset: str, value: int) -> int:
        if asset == ETH:  # ETH is not booked: nothing but a payout takes ETH from the escrow
            return value
        out = self.books.payout(asset, value, self.owed(asset), self.held(asset))
        if out != value:
            self.count_path("payouts shared")
        return out

    # -- deal selection and the contract's checks ----------------------------------------------------------

    def pick(self, index: int, *states: DealState) -> MDeal:
        """Usually a deal in one of ``states`` (where the action can succeed), sometimes any deal."""
        ids = sorted(self.deals)
        fitting = [i for i in ids if self.deals[i].state in states]
        if fitting and index % 4:
            return self.deals[fitting[(index // 4) % len(fitting)]]
        return self.deals[ids[index % len(ids)]]

    def load_error(self, deal: MDeal, terms: DealTerms) -> tuple[str, dict[str, Any]] | None:
        if terms != deal.terms:
            return ("EscrowTermsMismatch", {"dealId": deal.id})
        return None

    @staticmethod
    def state_error(deal: MDeal, *allowed: DealState) -> tuple[str, dict[str, Any]] | None:
        if deal.state not in allowed:
            return ("EscrowInvalidState", {"dealId": deal.id, "state": int(deal.state)})
        return None

    def review_end(self, d: MDeal) -> int:
        return d.submitted_at + d.terms.review_window

    def ruling_end(self, d: MDeal) -> int:
        return d.submitted_at + d.terms.review_window + d.terms.ruling_window

    def fee(self, gross: int) -> int:
        return protocol_fee(gross, self.e.fee_bps)

    # -- rules: opening -----------------------------------------------------------------------------------

    CORRUPT = st.sampled_from(
        [None] * 27
        + [
            "zero_amount",
            "same_party",
            "arbiter_is_seller",
            "past_deadline",
            "promised_after",
            "penalty_no_promise",
            "bps",
            "wrong_value",
            "not_buyer",
        ]
    )

    def addr(self, name: str) -> str:
        e = self.e
        return {
            "b1": e.b1.address,
            "b2": e.b2.address,
            "s1": e.s1.address,
            "s2": e.s2.address,
            "rev": e.rev.address,
            "burn": e.burn.address,
            "reent": e.reent.address,
            "arb": e.arb.address,
            "stranger": e.stranger.address,
            "market": e.market.address,
            "owner": e.owner.address,
        }[name]

    @st.composite
    def _terms(draw: Any) -> dict[str, Any]:
        return {
            "buyer": draw(st.sampled_from(["b1", "b2"])),
            "seller": draw(st.sampled_from(["s1", "s2", "s1", "rev", "burn", "reent"])),
            "asset": draw(st.integers(0, 3)),
            "amount": draw(st.one_of(st.integers(1, 10_000), st.integers(10**15, 10**18))),
            "bond": draw(st.sampled_from([0, 0, 1, 10**16, 5 * 10**17])),
            "arbiter": draw(st.booleans()),
            "deliver_in": draw(st.integers(1, 6 * HOUR)),
            "promised_before": draw(st.one_of(st.none(), st.integers(0, 3 * HOUR))),
            "penalty": draw(st.sampled_from([0, 0, 100, 5000])),
            "cap": draw(st.sampled_from([0, 1000, 10_000])),
            "review": draw(st.integers(1, 2 * HOUR)),
            "ruling": draw(st.integers(1, 2 * HOUR)),
            "arbiter_fee": draw(st.sampled_from([0, 250, 10_000])),
            "default_split": draw(st.sampled_from([0, 5000, 10_000])),
        }

    def build_terms(self, p: dict[str, Any], corrupt: str | None) -> DealTerms:
        now = self.now()
        deliver = now + p["deliver_in"]
        promised = 0 if p["promised_before"] is None else max(deliver - p["promised_before"], 0)
        penalty = p["penalty"] if promised else 0
        t = DealTerms(
            buyer=self.addr(p["buyer"]),
            seller=self.addr(p["seller"]),
            amount=p["amount"],
            deliver_by=deliver,
            asset=self.e.assets[p["asset"]],
            arbiter=self.e.arb.address if p["arbiter"] else ZERO_ADDRESS,
            bond=p["bond"],
            terms_hash=bytes([len(self.deals) % 256]) * 32,
            promised_by=promised,
            review_window=p["review"],
            ruling_window=p["ruling"],
            penalty_bps_per_hour=penalty,
            penalty_cap_bps=p["cap"],
            arbiter_fee_bps=p["arbiter_fee"],
            default_seller_bps=p["default_split"],
        )
        if corrupt == "zero_amount":
            t = replace(t, amount=0)
        elif corrupt == "same_party":
            t = replace(t, seller=t.buyer)
        elif corrupt == "arbiter_is_seller":
            t = replace(t, arbiter=t.seller)
        elif corrupt == "past_deadline":
            t = replace(t, deliver_by=now, promised_by=0, penalty_bps_per_hour=0)
        elif corrupt == "promised_after":
            t = replace(t, promised_by=t.deliver_by + 1)
        elif corrupt == "penalty_no_promise":
            t = replace(t, promised_by=0, penalty_bps_per_hour=7)
        elif corrupt == "bps":
            t = replace(t, default_seller_bps=BPS + 1)
        return t

    def validate_error(self, t: DealTerms) -> tuple[str, dict[str, Any]] | None:
        if t.amount == 0:
            return ("EscrowZeroAmount", {})
        if t.seller in (ZERO_ADDRESS, t.buyer) or (
            t.arbiter != ZERO_ADDRESS and t.arbiter in (t.buyer, t.seller)
        ):
            return ("EscrowInvalidParties", {"buyer": t.buyer, "seller": t.seller, "arbiter": t.arbiter})
        if (
            t.deliver_by <= self.now()
            or t.promised_by > t.deliver_by
            or (t.promised_by == 0 and t.penalty_bps_per_hour != 0)
        ):
            return (
                "EscrowInvalidDeadlines",
                {"promisedBy": t.promised_by, "deliverBy": t.deliver_by, "now": self.now()},
            )
        for bps in (t.penalty_cap_bps, t.arbiter_fee_bps, t.default_seller_bps):
            if bps > BPS:
                return ("EscrowInvalidBps", {"bps": bps})
        return None

    def _open(self, t: DealTerms, state: DealState, locked: int) -> None:
        deal_id = self.next_id
        self.next_id += 1
        self.deals[deal_id] = MDeal(deal_id, t, state, history=[f"open {state.name}"])
        self.locked[t.asset] += locked

    @rule(p=_terms(), corrupt=CORRUPT)
    def create(self, p: dict[str, Any], corrupt: str | None) -> None:
        t = self.build_terms(p, corrupt)
        sender = self.e.stranger.address if corrupt == "not_buyer" else t.buyer
        value = t.amount if t.is_eth else 0
        if corrupt == "wrong_value":
            value = value + 1 if t.is_eth else 1
        data = self.e.escrow.encode_abi("create", args=[t.as_tuple()])
        expect = None
        if sender != t.buyer:
            expect = ("EscrowUnauthorized", {"dealId": 0, "caller": sender})
        expect = expect or self.validate_error(t)
        if expect is None and value != (t.amount if t.is_eth else 0):
            expect = ("EscrowWrongValue", {"expected": t.amount if t.is_eth else 0, "sent": value})
        if expect is not None:
            self.act(sender, data, value, expect)
            return
        self.act(sender, data, value)
        state = S.AWAITING_BOND if t.bond else S.FUNDED
        if t.is_eth:
            self.balances[(self.e.escrow.address, ETH)] += value
            self._open(t, state, t.amount)
        else:
            got = self.pull(t.asset, t.buyer, t.amount)
            self._open(replace(t, amount=got), state, got)

    @rule(p=_terms(), bond_posted=st.booleans(), by_stranger=st.sampled_from([False] * 5 + [True]))
    def open_for(self, p: dict[str, Any], bond_posted: bool, by_stranger: bool) -> None:
        """A market opens a deal for a buyer (tokens pulled from the market, donations swept first)."""
        e = self.e
        t = self.build_terms(p, None)
        sender = e.stranger.address if by_stranger else e.market.address
        bond = t.bond if bond_posted else 0
        expected = t.amount + bond
        value = expected if t.is_eth else 0
        data = e.escrow.encode_abi("openFor", args=[t.as_tuple(), bond_posted])
        if by_stranger:
            self.act(sender, data, value, ("EscrowNotMarket", {"caller": sender}))
            return
        state = S.FUNDED if (t.bond == 0 or bond_posted) else S.AWAITING_BOND
        if t.is_eth:
            self.act(sender, data, value)
            self.balances[(e.escrow.address, ETH)] += value
            self._open(t, state, expected)
            return
        # `_receiveFromMarket`: what the escrow holds beyond its books counts first (a donation goes to this
        # deal, up to what it needs), the shortfall is pulled from the market (it approved the escrow)
        donated = self.surplus(t.asset)
        if donated:
            self.count_path("market deals funded by a surplus")
        pulled = expected - donated if donated < expected else 0
        received = donated + self.arrives(t.asset, pulled)
        capped = min(received, expected)
        amount = capped * t.amount // expected
        if capped != expected and amount == 0:
            self.act(sender, data, value, ("EscrowZeroAmount", {}))
            return
        self.act(sender, data, value)
        if pulled:
            self.pull(t.asset, sender, pulled)
        if capped == expected:
            self._open(t, state, expected)
        else:
            adjusted = replace(t, amount=amount)
            if bond_posted:
                adjusted = replace(adjusted, bond=capped - amount)
            self._open(adjusted, state, capped)

    @rule(asset=st.integers(1, 3), amount=st.integers(1, 10**18), i=st.integers(0, 10**6))
    def donate(self, asset: int, amount: int, i: int) -> None:
        """Someone sends tokens straight to the escrow: the books do not move; the surplus is shared pro rata
        by the claims paid while it lasts (``Credits._share``), or funds the next market deal first. Usually
        a token the escrow holds claims in (so later payouts share it), sometimes any."""
        e = self.e
        booked = [a for a in e.assets[1:] if self.owed(a)]
        token = booked[(i // 4) % len(booked)] if booked and i % 4 else e.assets[asset]
        data = encode_call("transfer(address,uint256)", ["address", "uint256"], [e.escrow.address, amount])
        self.act(e.stranger.address, data, to=token)
        self.pull(token, e.stranger.address, amount)

    @rule()
    def eth_cannot_be_donated(self) -> None:
        e = self.e
        signer = e.stranger
        self.fast.tick()
        receipt = self.fast.send(signer, e.escrow.address, b"", 1, tick=False)
        assert not receipt.ok
        self.gas(signer.address)

    # -- rules: seller side ---------------------------------------------------------------------------------

    def who(self, d: MDeal, role: str) -> str:
        return {
            "buyer": d.terms.buyer,
            "seller": d.terms.seller,
            "arbiter": self.e.arb.address,
            "stranger": self.e.stranger.address,
            "other_buyer": (self.e.b2.address if d.terms.buyer == self.e.b1.address else self.e.b1.address),
        }[role]

    ROLES = st.sampled_from(["buyer", "seller", "seller", "buyer", "arbiter", "stranger", "other_buyer"])

    def terms_for(self, d: MDeal, stale: bool) -> DealTerms:
        return replace(d.terms, amount=d.terms.amount + 1) if stale else d.terms

    STALE = st.sampled_from([False] * 9 + [True])

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE, wrong_value=st.sampled_from([False] * 5 + [True]))
    def post_bond(self, i: int, role: str, stale: bool, wrong_value: bool) -> None:
        d = self.pick(i, S.AWAITING_BOND)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        value = (t.bond if t.is_eth else 0) + (1 if wrong_value else 0)
        data = self.e.escrow.encode_abi("postBond", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.AWAITING_BOND)
        if expect is None and sender != t.seller:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and self.now() > t.deliver_by:
            expect = ("EscrowDeadlinePassed", {"dealId": d.id, "deadline": t.deliver_by, "now": self.now()})
        if expect is None and value != (t.bond if t.is_eth else 0):
            expect = ("EscrowWrongValue", {"expected": t.bond if t.is_eth else 0, "sent": value})
        if expect is not None:
            self.act(sender, data, value, expect)
            return
        self.act(sender, data, value)
        if t.is_eth:
            # through `execute` the operator paid (route charged the signer); the value lands in the escrow
            self.balances[(self.e.escrow.address, ETH)] += value
            got = value
        else:
            got = self.pull(t.asset, sender, t.bond)
        d.terms = replace(d.terms, bond=got)
        d.state = S.FUNDED
        d.history.append("bond")
        self.locked[t.asset] += got

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def submit(self, i: int, role: str, stale: bool) -> None:
        d = self.pick(i, S.FUNDED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("submit", args=[d.id, t.as_tuple(), b"\x11" * 32])
        expect = self.load_error(d, t) or self.state_error(d, S.FUNDED)
        if expect is None and sender != t.seller:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and self.now() > t.deliver_by:
            expect = ("EscrowDeadlinePassed", {"dealId": d.id, "deadline": t.deliver_by, "now": self.now()})
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        d.state, d.submitted_at = S.SUBMITTED, self.fast.now
        d.buyer_c = d.seller_c = False  # the packed word is rebuilt without the cancel flags
        d.history.append("submit")

    # -- rules: settlement ----------------------------------------------------------------------------------

    def settle_error(
        self, d: MDeal, t: DealTerms, sender: str, by_buyer: bool
    ) -> tuple[str, dict[str, Any]] | None:
        expect = self.load_error(d, t) or self.state_error(d, S.SUBMITTED)
        if expect is None and by_buyer and sender != t.buyer:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and not by_buyer and self.now() <= self.review_end(d):
            expect = (
                "EscrowDeadlineNotReached",
                {"dealId": d.id, "deadline": self.review_end(d), "now": self.now()},
            )
        return expect

    def apply_settle(self, d: MDeal, by_buyer: bool) -> None:
        t = d.terms
        penalty = t.late_penalty(d.submitted_at)
        gross = t.amount - penalty
        fee = self.fee(gross)
        to_seller = gross - fee + t.bond
        self.unlock(t.asset, t.amount + t.bond, fee)
        d.state = S.ACCEPTED if by_buyer else S.FINALIZED
        d.settlement = Settlement(to_seller=to_seller, to_buyer=penalty, fee=fee)
        d.history.append(d.state.name)
        self.pay(t.asset, t.seller, to_seller)
        self.pay(t.asset, t.buyer, penalty)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE, by_buyer=st.booleans())
    def accept_or_finalize(self, i: int, role: str, stale: bool, by_buyer: bool) -> None:
        d = self.pick(i, S.SUBMITTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("accept" if by_buyer else "finalize", args=[d.id, t.as_tuple()])
        expect = self.settle_error(d, t, sender, by_buyer)
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        self.apply_settle(d, by_buyer)

    @precondition(lambda self: self.deals)
    @rule(
        picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
        role=ROLES,
        by_buyer=st.booleans(),
        stale=st.lists(st.booleans(), min_size=5, max_size=5),
        mismatch=st.sampled_from([False] * 9 + [True]),
    )
    def batch(self, picks: list[int], role: str, by_buyer: bool, stale: list[bool], mismatch: bool) -> None:
        """acceptMany / finalizeMany: failing items are skipped with the reason the strict call would give."""
        deals = [self.pick(i) for i in picks]
        terms = [
            self.terms_for(d, s and k % 3 == 0) for k, (d, s) in enumerate(zip(deals, stale, strict=False))
        ]
        sender = self.who(deals[0], role)
        ids = [d.id for d in deals]
        if mismatch:
            data = self.e.escrow.encode_abi(
                "acceptMany" if by_buyer else "finalizeMany",
                args=[[*ids, ids[0]], [x.as_tuple() for x in terms]],
            )
            self.act(sender, data, 0, ("EscrowLengthMismatch", {"ids": len(ids) + 1, "deals": len(ids)}))
            return
        data = self.e.escrow.encode_abi(
            "acceptMany" if by_buyer else "finalizeMany", args=[ids, [x.as_tuple() for x in terms]]
        )
        # the model settles sequentially, exactly like the loop
        expected: list[tuple[int, str | None]] = []
        settle_after: list[MDeal] = []
        snapshot = {d.id: d.state for d in deals}
        for d, t in zip(deals, terms, strict=False):
            why = self.settle_error(d, t, sender, by_buyer)
            expected.append((d.id, why[0] if why else None))
            if why is None:
                # later duplicates see the settled state
                d.state = S.ACCEPTED if by_buyer else S.FINALIZED
                settle_after.append(d)
        for d in deals:
            d.state = snapshot[d.id]
        receipt = self.act(sender, data)
        seen: list[tuple[int, str | None]] = []
        for log in receipt["logs"]:
            decoded = self.e.client._decode(log) if log["address"] == self.e.escrow.address else None
            if decoded is None:
                continue
            name, ev = decoded
            if name == "DealSkipped":
                seen.append(
                    (int(ev["args"]["dealId"]), decode_revert(bytes(ev["args"]["reason"])).error_name)
                )
            elif name in ("DealAccepted", "DealFinalized"):
                seen.append((int(ev["args"]["dealId"]), None))
        assert seen == expected, f"batch outcome {seen} != model {expected}"
        for d in settle_after:
            self.apply_settle(d, by_buyer)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE, share=st.sampled_from([0, 1, 2, 3, 4]))
    def release(self, i: int, role: str, stale: bool, share: int) -> None:
        d = self.pick(i, S.AWAITING_BOND, S.FUNDED, S.SUBMITTED, S.DISPUTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        amount = {0: 0, 1: 1, 2: t.amount // 2, 3: t.amount, 4: t.amount + 1}[share]
        data = self.e.escrow.encode_abi("release", args=[d.id, t.as_tuple(), amount])
        expect = self.load_error(d, t) or self.state_error(
            d, S.AWAITING_BOND, S.FUNDED, S.SUBMITTED, S.DISPUTED
        )
        if expect is None and sender != t.buyer:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and (amount == 0 or amount > t.amount):
            expect = ("EscrowInvalidRelease", {"dealId": d.id, "amount": amount, "remaining": t.amount})
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        fee = self.fee(amount)
        d.terms = replace(d.terms, amount=t.amount - amount)
        d.released += amount
        d.history.append(f"release {amount}")
        self.unlock(t.asset, amount, fee)
        self.pay(t.asset, t.seller, amount - fee)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def dispute(self, i: int, role: str, stale: bool) -> None:
        d = self.pick(i, S.SUBMITTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("dispute", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.SUBMITTED)
        if expect is None and sender != t.buyer:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and t.arbiter == ZERO_ADDRESS:
            expect = ("EscrowNoArbiter", {"dealId": d.id})
        if expect is None and self.now() > self.review_end(d):
            expect = (
                "EscrowDeadlinePassed",
                {"dealId": d.id, "deadline": self.review_end(d), "now": self.now()},
            )
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        d.state = S.DISPUTED
        d.history.append("dispute")

    @precondition(lambda self: self.deals)
    @rule(
        i=st.integers(0, 10**6),
        role=ROLES,
        stale=STALE,
        seller_bps=st.sampled_from([0, 1, 3333, 5000, 10_000, 10_001]),
        bond_bps=st.sampled_from([0, 5000, 10_000, 10_001]),
    )
    def resolve(self, i: int, role: str, stale: bool, seller_bps: int, bond_bps: int) -> None:
        d = self.pick(i, S.DISPUTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, "arbiter" if role in ("buyer", "other_buyer") else role)
        data = self.e.escrow.encode_abi("resolve", args=[d.id, t.as_tuple(), seller_bps, bond_bps])
        expect = self.load_error(d, t) or self.state_error(d, S.DISPUTED)
        if expect is None and sender != t.arbiter:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and self.now() > self.ruling_end(d):
            expect = (
                "EscrowDeadlinePassed",
                {"dealId": d.id, "deadline": self.ruling_end(d), "now": self.now()},
            )
        if expect is None and seller_bps > BPS:
            expect = ("EscrowInvalidBps", {"bps": seller_bps})
        if expect is None and bond_bps > BPS:
            expect = ("EscrowInvalidBps", {"bps": bond_bps})
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        arbiter_gross = t.amount * t.arbiter_fee_bps // BPS
        rest = t.amount - arbiter_gross
        seller_gross = rest * seller_bps // BPS
        bond_to_seller = t.bond * bond_bps // BPS
        seller_fee, arbiter_fee = self.fee(seller_gross), self.fee(arbiter_gross)
        fee = seller_fee + arbiter_fee  # the arbiter's fee pays the protocol fee too
        to_arbiter = arbiter_gross - arbiter_fee
        to_seller = seller_gross - seller_fee + bond_to_seller  # not the arbiter's part of the fee
        to_buyer = rest - seller_gross + t.bond - bond_to_seller
        assert to_seller + to_buyer + to_arbiter + fee == t.amount + t.bond
        self.unlock(t.asset, t.amount + t.bond, fee)
        d.state = S.RESOLVED
        d.settlement = Settlement(to_seller=to_seller, to_buyer=to_buyer, to_arbiter=to_arbiter, fee=fee)
        d.history.append("resolve")
        self.pay(t.asset, t.seller, to_seller)
        self.pay(t.asset, t.buyer, to_buyer)
        self.pay(t.asset, t.arbiter, to_arbiter)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def settle_default(self, i: int, role: str, stale: bool) -> None:
        d = self.pick(i, S.DISPUTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("settleDefault", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.DISPUTED)
        if expect is None and self.now() <= self.ruling_end(d):
            expect = (
                "EscrowDeadlineNotReached",
                {"dealId": d.id, "deadline": self.ruling_end(d), "now": self.now()},
            )
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        penalty = t.late_penalty(d.submitted_at)
        split = t.default_seller_bps
        seller_gross = (t.amount - penalty) * split // BPS
        bond_to_seller = t.bond * split // BPS
        fee = self.fee(seller_gross)
        to_seller = seller_gross - fee + bond_to_seller
        to_buyer = t.amount - seller_gross + t.bond - bond_to_seller
        self.unlock(t.asset, t.amount + t.bond, fee)
        d.state = S.RESOLVED
        d.settlement = Settlement(to_seller=to_seller, to_buyer=to_buyer, fee=fee)
        d.history.append("default")
        self.pay(t.asset, t.seller, to_seller)
        self.pay(t.asset, t.buyer, to_buyer)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def reject(self, i: int, role: str, stale: bool) -> None:
        """Issue 12, point 1: the buyer of an arbiter-less deal rejects within the review window."""
        d = self.pick(i, S.SUBMITTED)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("reject", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.SUBMITTED)
        if expect is None and sender != t.buyer:
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is None and t.arbiter != ZERO_ADDRESS:
            expect = ("EscrowHasArbiter", {"dealId": d.id, "arbiter": t.arbiter})
        if expect is None and self.now() > self.review_end(d):
            expect = (
                "EscrowDeadlinePassed",
                {"dealId": d.id, "deadline": self.review_end(d), "now": self.now()},
            )
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        to_buyer = t.amount + t.bond
        self.unlock(t.asset, to_buyer, 0)
        d.state = S.REJECTED
        d.settlement = Settlement(to_buyer=to_buyer)
        d.history.append("reject")
        self.pay(t.asset, t.buyer, to_buyer)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def refund(self, i: int, role: str, stale: bool) -> None:
        d = self.pick(i, S.FUNDED, S.AWAITING_BOND)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("refund", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.FUNDED, S.AWAITING_BOND)
        if expect is None and self.now() <= t.deliver_by:
            expect = (
                "EscrowDeadlineNotReached",
                {"dealId": d.id, "deadline": t.deliver_by, "now": self.now()},
            )
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        to_buyer = t.amount + (t.bond if d.state == S.FUNDED else 0)
        self.unlock(t.asset, to_buyer, 0)
        d.state = S.REFUNDED
        d.settlement = Settlement(to_buyer=to_buyer)
        d.history.append("refund")
        self.pay(t.asset, t.buyer, to_buyer)

    @precondition(lambda self: self.deals)
    @rule(i=st.integers(0, 10**6), role=ROLES, stale=STALE)
    def cancel(self, i: int, role: str, stale: bool) -> None:
        d = self.pick(i, S.FUNDED, S.AWAITING_BOND)
        t = self.terms_for(d, stale)
        sender = self.who(d, role)
        data = self.e.escrow.encode_abi("cancel", args=[d.id, t.as_tuple()])
        expect = self.load_error(d, t) or self.state_error(d, S.FUNDED, S.AWAITING_BOND)
        if expect is None and sender not in (t.buyer, t.seller):
            expect = ("EscrowUnauthorized", {"dealId": d.id, "caller": sender})
        if expect is not None:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        buyer_c = d.buyer_c or sender == t.buyer
        seller_c = d.seller_c or sender == t.seller
        if d.state == S.FUNDED and not (buyer_c and seller_c):
            d.buyer_c, d.seller_c = buyer_c, seller_c
            d.history.append(f"cancel request {'buyer' if sender == t.buyer else 'seller'}")
            return
        bond = t.bond if d.state == S.FUNDED else 0
        # the cancelling call records no flag of its own (the flags are the announced requests)
        self.unlock(t.asset, t.amount + bond, 0)
        d.state = S.CANCELLED
        d.settlement = Settlement(to_buyer=t.amount, to_seller=bond)
        d.history.append("cancel")
        self.pay(t.asset, t.buyer, t.amount)
        self.pay(t.asset, t.seller, bond)

    @rule(
        i=st.integers(0, 10**6),
        role=ROLES,
        stale=STALE,
        fn=st.sampled_from(
            ["postBond", "submit", "accept", "finalize", "dispute", "settleDefault", "refund", "cancel"]
        ),
    )
    def unknown_deal(self, i: int, role: str, stale: bool, fn: str) -> None:
        """Any call on an id that was never opened fails with EscrowDealNotFound."""
        deal_id = self.next_id + i % 3
        t = DealTerms(buyer=self.e.b1.address, seller=self.e.s1.address, amount=1, deliver_by=self.now() + 10)
        args: list[Any] = [deal_id, t.as_tuple()] + ([b"\x00" * 32] if fn == "submit" else [])
        sender = self.e.b1.address
        self.act(
            sender, self.e.escrow.encode_abi(fn, args=args), 0, ("EscrowDealNotFound", {"dealId": deal_id})
        )

    # -- rules: credits, fees, hostile tokens --------------------------------------------------------------

    WITHDRAWERS = st.sampled_from(["b1", "b2", "s1", "s2", "rev", "burn", "reent", "arb", "stranger"])

    @rule(
        who=WITHDRAWERS,
        asset=st.integers(0, 3),
        to_self=st.booleans(),
        part=st.sampled_from([None, None, None, 0, 1, 2, 3]),
        i=st.integers(0, 10**6),
    )
    def withdraw(self, who: str, asset: int, to_self: bool, part: int | None, i: int) -> None:
        """withdraw / withdrawTo (``part`` None) or withdrawPart of 1, half, all or more than the credit;
        usually by someone holding a credit (one paid off the books if any), sometimes by anyone."""
        e = self.e
        account = self.addr(who)
        a = e.assets[asset]
        held_credits = sorted(k for k, v in self.credits.items() if v)
        shared = [k for k in held_credits if k[1] != ETH and self.surplus(k[1])]
        pool = shared if shared and i % 4 != 3 else held_credits
        if pool and i % 4:
            account, a = pool[(i // 4) % len(pool)]
        to = account if to_self else e.op.address
        credit = self.credits.get((account, a), 0)
        if part is None:
            amount = MAX
            data = e.escrow.encode_abi(
                "withdraw" if to_self else "withdrawTo", args=[a] if to_self else [a, to]
            )
        else:
            amount = [1, credit // 2, credit, credit + 1][part]
            data = e.escrow.encode_abi("withdrawPart", args=[a, to, amount])
        if credit == 0:
            self.act(account, data, 0, ("CreditsNothingToWithdraw", {"account": account, "asset": a}))
            return
        held, owed = (0, 0) if a == ETH else (self.held(a), self.owed(a))
        sent, left = withdrawal(amount, credit, held, owed)
        if held != owed:
            self.count_path("withdrawals shared")
        if self.refuses(a, to):
            self.act(account, data, 0, ("CreditsTransferFailed", {"asset": a, "to": to, "amount": sent}))
            return
        self.act(account, data)
        self.credits[(account, a)] = left
        self.move_out(a, to, sent)

    @rule(asset=st.integers(0, 3), who=st.sampled_from(["stranger", "b1", "rev"]), i=st.integers(0, 10**6))
    def collect_fees(self, asset: int, who: str, i: int) -> None:
        """Anyone sends the fees to the fee recipient; often in a token held off the books (their share)."""
        e = self.e
        a = e.assets[asset]
        shared = [x for x in e.assets[1:] if self.fees[x] and self.surplus(x)]
        if shared and i % 2:
            a = shared[(i // 2) % len(shared)]
        account = self.addr(who)
        data = e.escrow.encode_abi("collectFees", args=[a])
        owed = self.fees[a]
        if owed == 0:
            self.act(account, data, 0, ("CreditsNothingToWithdraw", {"account": e.fee_recipient, "asset": a}))
            return
        # off the books the fees take the same share as every other claim (not a `_share`: nothing pending)
        out = owed if a == ETH else share(owed, self.held(a), self.owed(a))
        if out != owed:
            self.count_path("fee collections shared")
        if self.refuses(a, e.fee_recipient):
            self.act(
                account,
                data,
                0,
                ("CreditsTransferFailed", {"asset": a, "to": e.fee_recipient, "amount": out}),
            )
            return
        self.act(account, data)
        self.fees[a] = 0
        self.move_out(a, e.fee_recipient, out)

    @rule(
        who=st.sampled_from(["b1", "b2", "s1", "s2", "rev", "arb", "owner"]),
        blocked=st.booleans(),
        i=st.integers(0, 10**6),
    )
    def block_payee(self, who: str, blocked: bool, i: int) -> None:
        """The plain ERC-20 refuses transfers to ``who`` (a USDC-style blocklist): payouts become credits.
        Often a party of an open deal in that token (so a settlement meets the block)."""
        e = self.e
        account = self.addr(who)
        parties = sorted(
            {
                p
                for d in self.deals.values()
                if d.terms.asset == e.token.address and d.state.is_active
                for p in (d.terms.seller, d.terms.buyer)
            }
        )
        if parties and i % 2:
            account = parties[(i // 2) % len(parties)]
        self.act(
            e.owner.address, e.token.encode_abi("setBlocked", args=[account, blocked]), to=e.token.address
        )
        (self.blocked.add if blocked else self.blocked.discard)(account)

    # -- rules: time -------------------------------------------------------------------------------------------

    @rule(seconds=st.one_of(st.integers(1, 120), st.sampled_from([HOUR, 2 * HOUR, 6 * HOUR])))
    def wait(self, seconds: int) -> None:
        self.fast.jump(seconds)

    @precondition(lambda self: self.deals)
    @rule(
        i=st.integers(0, 10**6),
        which=st.sampled_from(["deliver", "review", "ruling"]),
        offset=st.sampled_from([-1, 0, 1]),
    )
    def wait_for_deadline(self, i: int, which: str, offset: int) -> None:
        """Move the clock so the next transaction lands exactly at a deadline - 1, at it, or + 1."""
        d = self.pick(i)
        if which == "deliver":
            deadline = d.terms.deliver_by
        elif d.submitted_at:
            deadline = self.review_end(d) if which == "review" else self.ruling_end(d)
        else:
            return
        target = deadline + offset  # the next transaction's timestamp
        if target - 1 > self.fast.now:
            self.fast.jump(target - 1 - self.fast.now)

    # -- invariants ---------------------------------------------------------------------------------------

    def _deal_calls(self, i: int) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
        d = self.deals[i]
        key = (i, d.terms)
        cached = _ENCODED.get(key)
        if cached is None:
            esc = self.e.escrow.address
            cached = _ENCODED[key] = (
                (esc, encode_call("dealStatus(uint256)", ["uint256"], [i])),
                (
                    esc,
                    bytes.fromhex(self.e.escrow.encode_abi("verifyTerms", args=[i, d.terms.as_tuple()])[2:]),
                ),
            )
        return cached

    @invariant()
    def books_balance_and_views_agree(self) -> None:
        self.count_step()
        e = self.e
        esc = e.escrow.address
        credit_keys = e.credit_keys
        ids = sorted(self.deals)
        calls = list(e.static_calls)
        pairs = [self._deal_calls(i) for i in ids]
        calls += [p[0] for p in pairs] + [p[1] for p in pairs]
        raw, balances = self._read(calls)
        # §6.1 solvency, per asset, and each figure equals the model's
        for k, a in enumerate(e.assets):
            locked, credits, fees = (as_uint(raw[k], j) for j in range(3))
            model_credits = sum(v for (_, asset), v in self.credits.items() if asset == a)
            assert (locked, credits, fees) == (self.locked[a], model_credits, self.fees[a]), (
                f"totals({a}) = {(locked, credits, fees)}, model {(self.locked[a], model_credits, self.fees[a])}"
            )
            surplus = self.surplus(a)
            assert surplus >= 0 if a != ETH else surplus == 0, (
                f"model holds {surplus} beyond its books of {a}"
            )
            assert balances[(esc, a)] == locked + credits + fees + surplus, (
                f"insolvent in {a}: balance {balances[(esc, a)]} vs {locked}+{credits}+{fees}+{surplus}"
            )
            assert self.books.pending.get(a, 0) == 0, (
                f"settlement left {self.books.pending[a]} of {a} pending"
            )
            assert locked == sum(self._locked_of(d) for d in self.deals.values() if d.terms.asset == a)
        # every credit
        off = len(e.assets)
        for k, key in enumerate(credit_keys):
            assert as_uint(raw[off + k]) == self.credits.get(key, 0), f"credit {key}"
        # every balance (ETH: gas included)
        for key, value in balances.items():
            assert value == self.balances.get(key, value), (
                f"balance {key}: chain {value}, model {self.balances[key]}"
            )
        # deals: status, terms, forward-only states, one settlement at most
        off += len(credit_keys)
        for k, i in enumerate(ids):
            d = self.deals[i]
            state, submitted, bc, sc = (as_uint(raw[off + k], j) for j in range(4))
            assert (state, submitted, bool(bc), bool(sc)) == (
                int(d.state),
                d.submitted_at,
                d.buyer_c,
                d.seller_c,
            ), f"deal {i}: chain {(state, submitted, bc, sc)}, model {d} "
            assert as_uint(raw[off + len(ids) + k]) == 1, f"deal {i}: stored terms differ from the model's"
            assert state >= self.seen_state.get(i, 0), (
                f"deal {i} went back from {self.seen_state[i]} to {state}"
            )
            if self.seen_state.get(i, 0) >= S.ACCEPTED:
                assert state == self.seen_state[i], f"deal {i} left terminal state {self.seen_state[i]}"
            self.seen_state[i] = state
            assert self.settlements.get(i, 0) == (1 if d.state.is_terminal else 0), f"deal {i} settled twice"

    def _locked_of(self, d: MDeal) -> int:
        if d.state == S.AWAITING_BOND:
            return d.terms.amount
        if d.state.is_active:
            return d.terms.amount + d.terms.bond
        return 0

    def _client_matches(self, rebuilt: dict[int, Deal]) -> None:
        assert sorted(rebuilt) == sorted(self.deals)
        for i, m in self.deals.items():
            c = rebuilt[i]
            got = (c.terms, c.state, c.submitted_at, c.buyer_cancelled, c.seller_cancelled, c.released)
            want = (m.terms, m.state, m.submitted_at, m.buyer_c, m.seller_c, m.released)
            assert got == want, f"deal {i} rebuilt {got} != model {want} ({m.history})"
            if m.settlement is not None:
                assert c.settlement == m.settlement, f"deal {i} settlement {c.settlement} != {m.settlement}"
            assert c.locked == self._locked_of(m)

    @invariant()
    def client_view_matches(self) -> None:
        """§6.10 after every step: the deals EscrowClient folds from the events emitted so far equal the
        model (and so the views checked above). The fold runs incrementally over each step's logs with the
        client's own event handlers; teardown rebuilds everything from ``eth_getLogs`` once more."""
        self._client_matches(self.client_view)

    def teardown(self) -> None:
        try:
            self._client_matches({d.id: d for d in self.e.client.deals()})
        finally:
            super().teardown()


@pytest.mark.anvil
def test_escrow_machine(request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite) -> None:
    EscrowMachine.env = Env(anvil, anvil_suite)
    # long profile (`make fuzz`): 250 examples of up to 50 steps, >= 10,000 steps for the escrow family
    # (the shared default of 100 x 50 stops at 5,000)
    run_machine(request, EscrowMachine, EscrowMachine.env.fast, long=(250, 50))

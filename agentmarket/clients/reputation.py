"""Client for :sol:`ReputationRegistry`: rate the counterparty of a settled escrow deal, read reputations.

Only the buyer and the seller of an Accepted, Finalized or Resolved deal can rate each other, once per
deal. Scores are 0..100; the summary weights each rating by the deal's value. Figures are kept per asset
(weights in different assets are not comparable): ``reputation(agent, asset)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD

from .. import validate
from ..errors import InvalidInput, InvalidState, NotAuthorized
from ..types import ETH, Deal, DealState
from .base import ContractClient
from .escrow import EscrowClient

MAX_SCORE = 100
SETTLED = (DealState.ACCEPTED, DealState.FINALIZED, DealState.RESOLVED)


def encode_tag(tag: str | bytes | None) -> bytes:
    """A tag as bytes32: text is UTF-8, left-aligned and zero-padded (Solidity's ``bytes32("compute")``)."""
    if tag is None or tag == "" or tag == b"":
        return b"\0" * 32
    if not isinstance(tag, (str, bytes)):
        raise InvalidInput(f"tag must be text or bytes, got {type(tag).__name__}", param="tag")
    raw = tag.encode() if isinstance(tag, str) else bytes(tag)
    if len(raw) > 32:
        raise InvalidInput(f"tag {tag!r} is longer than 32 bytes", param="tag")
    return raw.ljust(32, b"\0")


def decode_tag(tag: bytes) -> str:
    """Inverse of :func:`encode_tag` for text tags (hex for binary ones)."""
    raw = bytes(tag).rstrip(b"\0")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "0x" + bytes(tag).hex()


def comment_hash(comment: str | bytes | None) -> bytes:
    """keccak256 of a text comment; a 32-byte value is taken as the hash itself; None is zero."""
    if comment is None:
        return b"\0" * 32
    if not isinstance(comment, (str, bytes)):
        raise InvalidInput(f"comment must be text or bytes, got {type(comment).__name__}", param="comment")
    if isinstance(comment, bytes) and len(comment) == 32:
        return comment
    return keccak(comment.encode() if isinstance(comment, str) else bytes(comment))


@dataclass(frozen=True)
class Figures:
    """Count, summed weights and sum(weight * score) of a set of ratings."""

    count: int
    total_weight: int
    weighted_score_sum: int

    @property
    def score(self) -> float | None:
        """Value-weighted average score (0..100), None without ratings or weight."""
        return self.weighted_score_sum / self.total_weight if self.total_weight else None


@dataclass(frozen=True)
class Rating:
    """One rating, as emitted."""

    deal_id: int
    rater: str
    ratee: str
    asset: str
    score: int
    tag: str
    comment_hash: bytes
    weight: int
    block: int = 0


@dataclass(frozen=True)
class Reputation:
    """An agent's reputation in one asset: overall figures and figures per tag."""

    agent: str
    asset: str
    overall: Figures
    by_tag: dict[str, Figures] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.overall.count

    @property
    def score(self) -> float | None:
        return self.overall.score

    @property
    def total_value(self) -> int:
        return self.overall.total_weight


class ReputationClient(ContractClient):
    """Rates and reads through :sol:`ReputationRegistry`, acting as ``account`` (None for reads only)."""

    ARTIFACT = "ReputationRegistry"
    GAS_FAMILY = "reputation"

    def __init__(
        self,
        chain: Any,
        contract: str | Contract,
        escrow: EscrowClient,
        account: LocalAccount | None = None,
        *,
        from_block: int | None = None,
    ):
        super().__init__(chain, contract, account, from_block=from_block)
        self.escrow = escrow
        self.tx = chain.transactor

    @classmethod
    def from_suite(cls, suite: Any, account: LocalAccount | None = None) -> ReputationClient:
        return cls(suite.chain, suite[cls.ARTIFACT], EscrowClient.from_suite(suite, account), account)

    def as_(self, account: LocalAccount) -> ReputationClient:
        clone = super().as_(account)
        clone.escrow = self.escrow.as_(account)
        return clone

    # -- writes -------------------------------------------------------------------------------------------

    def rate(
        self,
        deal: Deal | int,
        score: int,
        *,
        tag: str | bytes | None = None,
        comment: str | bytes | None = None,
    ) -> Rating:
        """Rate the counterparty of a settled deal (score 0..100). Checks role, state and that this side
        has not rated yet before sending."""
        if self.account is None:
            raise NotAuthorized("a read-only client cannot rate")
        me = to_checksum_address(self.account.address)
        score = validate.integer(score, "score", maximum=MAX_SCORE, what="a score (int 0..100)")
        # a Deal in hand: refresh its state with views (rebuilding it from the logs costs a log scan)
        if isinstance(deal, Deal):
            current = self.escrow._current(deal)
        else:
            current = self.escrow.deal(validate.integer(deal, "deal", maximum=2**64 - 1))
        if me not in (current.buyer, current.seller):
            raise NotAuthorized(f"{me} is neither buyer nor seller of deal {current.id}")
        if current.state not in SETTLED:
            raise InvalidState(
                f"deal {current.id} is {current.state.name}; only settled, paid deals can be rated"
            )
        by_buyer = me == current.buyer
        if self.contract.functions.hasRated(current.id, by_buyer).call():
            raise InvalidState(f"{me} already rated deal {current.id}")
        fn = self.contract.functions.rate(
            current.id, current.terms.as_tuple(), int(score), encode_tag(tag), comment_hash(comment)
        )
        receipt = self._send(fn, gas_key="reputation.rate_first")  # the dearer figure: first rating of a pair
        events = self.contract.events.Rated().process_receipt(receipt, errors=DISCARD)
        return self._rating(events[0])

    # -- reads --------------------------------------------------------------------------------------------

    def figures(self, agent: str, asset: str = ETH, tag: str | bytes | None = None) -> Figures:
        """On-chain figures of ``agent`` in ``asset`` (overall, or for one tag)."""
        agent, asset = validate.address(agent, "agent"), validate.address(asset, "asset")
        if tag is None:
            values = self.contract.functions.summary(agent, asset).call()
        else:
            values = self.contract.functions.tagSummary(agent, asset, encode_tag(tag)).call()
        return Figures(*(int(v) for v in values))

    def ratings(self, agent: str | None = None, *, rater: str | None = None) -> list[Rating]:
        """Ratings received by ``agent`` (and/or given by ``rater``), from events."""
        topics: list[Any] = [
            None,
            None,
            None
            if rater is None
            else "0x" + bytes.fromhex(to_checksum_address(rater)[2:]).rjust(32, b"\0").hex(),
            None
            if agent is None
            else "0x" + bytes.fromhex(to_checksum_address(agent)[2:]).rjust(32, b"\0").hex(),
        ]
        event = self.contract.events.Rated()
        topics[0] = (
            "0x" + keccak(text="Rated(uint256,address,address,address,uint8,bytes32,bytes32,uint256)").hex()
        )
        while topics and topics[-1] is None:
            topics.pop()
        logs = self._logs(topics)
        return [self._rating(event.process_log(log)) for log in logs]

    def reputation(self, agent: str, asset: str = ETH) -> Reputation:
        """Overall and per-tag figures of ``agent`` in ``asset`` (tags found from events, figures from views)."""
        agent, asset = to_checksum_address(agent), to_checksum_address(asset)
        tags = sorted({r.tag for r in self.ratings(agent) if r.asset == asset and r.tag})
        return Reputation(
            agent, asset, self.figures(agent, asset), {t: self.figures(agent, asset, t) for t in tags}
        )

    @staticmethod
    def _rating(data: Any) -> Rating:
        a = data["args"]
        return Rating(
            int(a["dealId"]),
            a["rater"],
            a["ratee"],
            a["asset"],
            int(a["score"]),
            decode_tag(a["tag"]),
            bytes(a["commentHash"]),
            int(a["weight"]),
            int(data["blockNumber"]),
        )

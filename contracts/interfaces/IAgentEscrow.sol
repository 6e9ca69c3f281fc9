// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Deal, DealState} from "../libraries/EscrowTypes.sol";
import {ICredits} from "./ICredits.sol";

/// @title IAgentEscrow
/// @notice Singleton escrow holding many deals between agents: the buyer locks ETH or an ERC-20, the
/// seller (optionally bonded) submits a deliverable hash, the buyer accepts (or stays silent and anyone
/// finalizes), disputes go to an optional arbiter, and every locked coin has a permissionless exit after
/// a deadline. Only a hash of each deal's terms is stored: every call passes the `Deal` struct back.
///
/// Deadlines are inclusive for the party that must act and the exit opens one second later:
///   submit/postBond while `now <= deliverBy`,                refund when `now > deliverBy`;
///   dispute while `now <= submittedAt + reviewWindow`,        finalize when `now > submittedAt + reviewWindow`;
///   resolve while `now <= submittedAt + reviewWindow + rulingWindow`, settleDefault after it.
/// Deals without an arbiter: the buyer is the evaluator (after ERC-8183's client-as-evaluator). Within the
/// review window it accepts or `reject`s; a rejection refunds the amount and forfeits the posted bond to the
/// buyer. So nobody collects from a buyer who acts in time; a seller that does not trust the buyer asks for
/// an arbiter in the terms.
/// Fees: the protocol fee is rounded up on every payout for service (seller share, release, arbiter fee).
/// Admin: the owner (Ownable2Step) can only admit and delist market contracts (`setMarket`), announced
/// MARKET_DELAY ahead once any deal exists; a delisted market can still open the deals of sales it started.
/// It cannot move, freeze or redirect deal funds, credits or fees; the fee rate and recipient are immutable
/// (the recipient may choose where its fees go: `collectFeesTo`).
interface IAgentEscrow is ICredits {
    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice A deal was opened and funded. `deal` is the exact struct whose hash is stored (its `amount`
    /// is what actually arrived). `state` is AwaitingBond or Funded. `openedBy` is the buyer or a market.
    event DealCreated(
        uint256 indexed dealId, address indexed buyer, address indexed seller, Deal deal, DealState state, address openedBy
    );
    /// @notice The seller posted its bond; `bond` (what arrived) replaces `deal.bond` in the stored terms.
    event BondPosted(uint256 indexed dealId, uint256 bond);
    /// @notice The seller submitted the hash of its deliverable; the review window started.
    event DeliverableSubmitted(uint256 indexed dealId, bytes32 deliverableHash, uint256 submittedAt);
    /// @notice The buyer released `amount` early to the seller (`fee` of it to the protocol);
    /// `remaining` replaces `deal.amount` in the stored terms.
    event FundsReleased(uint256 indexed dealId, uint256 amount, uint256 fee, uint256 remaining);
    /// @notice The buyer accepted: seller got `toSeller` (price minus late penalty minus fee, plus bond),
    /// buyer got `toBuyer` (the late penalty). The protocol fee is not repeated here (it is derivable and
    /// this event is on the hottest path): fee = ceil((amount - toBuyer) * feeBps / 10_000).
    event DealAccepted(uint256 indexed dealId, uint256 toSeller, uint256 toBuyer);
    /// @notice The review window lapsed and `by` settled the deal as if accepted (fee as in `DealAccepted`).
    event DealFinalized(uint256 indexed dealId, address indexed by, uint256 toSeller, uint256 toBuyer);
    /// @notice The buyer disputed the deliverable; the arbiter now rules.
    event DealDisputed(uint256 indexed dealId);
    /// @notice The arbiter ruled: `sellerBps` of the amount left after its fee and `bondSellerBps` of the
    /// bond went to the seller, the rest to the buyer.
    event DisputeResolved(
        uint256 indexed dealId, uint256 sellerBps, uint256 bondSellerBps, uint256 toSeller, uint256 toBuyer,
        uint256 toArbiter, uint256 fee
    );
    /// @notice The arbiter missed its ruling deadline and `by` applied the terms' default split.
    event DisputeDefaulted(uint256 indexed dealId, address indexed by, uint256 toSeller, uint256 toBuyer, uint256 fee);
    /// @notice Nothing was delivered by the deadline: the buyer got the amount plus the posted bond.
    event DealRefunded(uint256 indexed dealId, address indexed by, uint256 toBuyer);
    /// @notice `party` asked to cancel a funded deal; the deal cancels when the other party asks too.
    event CancelRequested(uint256 indexed dealId, address indexed party);
    /// @notice The deal was cancelled before delivery: amount back to the buyer, bond back to the seller.
    event DealCancelled(uint256 indexed dealId, uint256 toBuyer, uint256 toSeller);
    /// @notice A batch skipped `dealId` because the item would have reverted with `reason` (an encoded error).
    event DealSkipped(uint256 indexed dealId, bytes reason);
    /// @notice Protocol fees in `asset` were sent to the fee recipient.
    event FeesCollected(address indexed asset, address indexed recipient, uint256 amount);
    /// @notice The owner admitted (`allowed`) or delisted a market contract, taking effect at `effectiveAt`.
    event MarketSet(address indexed market, bool allowed, uint256 effectiveAt);
    /// @notice The buyer rejected the deliverable of an arbiter-less deal: amount and bond went to the buyer.
    event DealRejected(uint256 indexed dealId, uint256 toBuyer);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice No deal exists under `dealId`.
    error EscrowDealNotFound(uint256 dealId);
    /// @notice The `Deal` struct passed does not hash to the terms stored for `dealId`.
    error EscrowTermsMismatch(uint256 dealId);
    /// @notice The deal is in `state`, which does not allow this action.
    error EscrowInvalidState(uint256 dealId, DealState state);
    /// @notice `caller` does not hold the role this action needs on `dealId` (0 when creating).
    error EscrowUnauthorized(uint256 dealId, address caller);
    /// @notice `caller` is not an authorised market contract.
    error EscrowNotMarket(address caller);
    /// @notice `deadline` has passed (`now` > `deadline`): the action is no longer possible.
    error EscrowDeadlinePassed(uint256 dealId, uint256 deadline, uint256 now);
    /// @notice `deadline` has not passed yet (`now` <= `deadline`): this exit is not open yet.
    error EscrowDeadlineNotReached(uint256 dealId, uint256 deadline, uint256 now);
    /// @notice The deal has no arbiter, so it cannot be disputed (the buyer `reject`s instead).
    error EscrowNoArbiter(uint256 dealId);
    /// @notice The deal has an arbiter: the buyer disputes instead of rejecting.
    error EscrowHasArbiter(uint256 dealId, address arbiter);
    /// @notice The deal amount (or what actually arrived) is zero.
    error EscrowZeroAmount();
    /// @notice Buyer, seller and arbiter must be non-zero (arbiter may be zero) and pairwise distinct.
    error EscrowInvalidParties(address buyer, address seller, address arbiter);
    /// @notice Deadlines must satisfy `now < deliverBy`, `promisedBy <= deliverBy`, and `promisedBy > 0`
    /// when a late penalty is set.
    error EscrowInvalidDeadlines(uint256 promisedBy, uint256 deliverBy, uint256 now);
    /// @notice A basis-point value above 10,000.
    error EscrowInvalidBps(uint256 bps);
    /// @notice `msg.value` must be `expected` (the amount for ETH deals, zero for ERC-20 deals).
    error EscrowWrongValue(uint256 expected, uint256 sent);
    /// @notice Release of `amount` exceeds the `remaining` locked amount (or is zero).
    error EscrowInvalidRelease(uint256 dealId, uint256 amount, uint256 remaining);
    /// @notice Batch arrays of different lengths.
    error EscrowLengthMismatch(uint256 ids, uint256 deals);
    /// @notice A per-asset total would under- or overflow, or an amount that arrived does not fit the
    /// 128-bit deal fields (unreachable with real tokens and uncorrupted books).
    error EscrowAccountingOverflow();
    /// @notice Constructor: fee above the 5% cap.
    error EscrowFeeTooHigh(uint256 feeBps, uint256 maxBps);
    /// @notice Constructor: a non-zero fee needs a fee recipient.
    error EscrowZeroFeeRecipient();

    // ---------------------------------------------------------------------------------------------
    // Deal life cycle
    // ---------------------------------------------------------------------------------------------

    /// @notice Open and fund a deal as its buyer (`deal.buyer == msg.sender`). ETH: send exactly
    /// `deal.amount`; ERC-20: approve it first (the amount actually received is recorded).
    function create(Deal calldata deal) external payable returns (uint256 dealId);

    /// @notice Market entry: an authorised market opens a deal on `deal.buyer`'s behalf, funds supplied in
    /// this call (ETH in `msg.value`; ERC-20 pre-transferred to the escrow or pulled from the market).
    /// With `bondPosted` the market supplies the seller bond too (`deal.amount + deal.bond` in total).
    function openFor(Deal calldata deal, bool bondPosted) external payable returns (uint256 dealId);

    /// @notice The seller posts the bond the terms ask for (before `deliverBy`).
    function postBond(uint256 dealId, Deal calldata deal) external payable;

    /// @notice The seller submits the hash of its deliverable (while `now <= deliverBy`).
    function submit(uint256 dealId, Deal calldata deal, bytes32 deliverableHash) external;

    /// @notice The buyer accepts the deliverable: the seller is paid (late penalty back to the buyer).
    function accept(uint256 dealId, Deal calldata deal) external;

    /// @notice The buyer releases part of the locked amount to the seller early (milestones).
    function release(uint256 dealId, Deal calldata deal, uint256 amount) external;

    /// @notice Anyone settles a submitted deal as accepted once the review window has passed.
    function finalize(uint256 dealId, Deal calldata deal) external;

    /// @notice The buyer disputes the deliverable within the review window (deals with an arbiter only).
    function dispute(uint256 dealId, Deal calldata deal) external;

    /// @notice The buyer rejects the deliverable of a deal without an arbiter within the review window:
    /// it gets the amount back and the seller's posted bond as compensation.
    function reject(uint256 dealId, Deal calldata deal) external;

    /// @notice The arbiter rules before the ruling deadline: after its fee, `sellerBps` of the amount and
    /// `bondSellerBps` of the bond go to the seller, the rest to the buyer.
    function resolve(uint256 dealId, Deal calldata deal, uint256 sellerBps, uint256 bondSellerBps) external;

    /// @notice Anyone applies the terms' default split (`deal.defaultSellerBps`) once the arbiter missed its
    /// ruling deadline. The late penalty applies as in `accept`; the arbiter gets no fee.
    function settleDefault(uint256 dealId, Deal calldata deal) external;

    /// @notice Anyone refunds a deal nothing was delivered for by `deliverBy`: the buyer gets the amount
    /// and the seller's posted bond as compensation.
    function refund(uint256 dealId, Deal calldata deal) external;

    /// @notice Cancel before delivery. Awaiting the bond, either party cancels alone; once funded, both
    /// must call (the second call cancels). Amount back to the buyer, bond back to the seller.
    function cancel(uint256 dealId, Deal calldata deal) external;

    /// @notice `accept` for many deals; items that would revert are skipped (`DealSkipped`).
    function acceptMany(uint256[] calldata dealIds, Deal[] calldata deals) external returns (uint256 settled);

    /// @notice `finalize` for many deals; items that would revert are skipped (`DealSkipped`).
    function finalizeMany(uint256[] calldata dealIds, Deal[] calldata deals) external returns (uint256 settled);

    // ---------------------------------------------------------------------------------------------
    // Credits, fees, admin
    // ---------------------------------------------------------------------------------------------

    /// @notice Anyone sends the protocol fees owed in `asset` to the immutable fee recipient.
    function collectFees(address asset) external returns (uint256 amount);

    /// @notice Fee recipient only: send the protocol fees owed in `asset` to `to` (a recipient that a token
    /// blocklists, or that cannot take ETH, still gets its fees out).
    function collectFeesTo(address asset, address to) external returns (uint256 amount);

    /// @notice Owner only: admit (`allowed`) or delist a market contract (the owner's only power). Once any
    /// deal exists the change takes effect MARKET_DELAY later; before that, at once. Withdrawing a pending
    /// admission is immediate. A delisted market keeps `isMarket` (it can still open the deals of sales it
    /// started); markets must stop starting new sales once `isListed` is false.
    function setMarket(address market, bool allowed) external;

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice Whether `market` may call `openFor` (its admission took effect).
    function isMarket(address market) external view returns (bool);

    /// @notice Whether `market` is admitted and not delisted: it may start new sales.
    function isListed(address market) external view returns (bool);

    /// @notice When `market`'s admission and delisting take (or took) effect; zero: none.
    function marketSchedule(address market) external view returns (uint256 admittedAt, uint256 delistedAt);

    /// @notice Where `deal` (the current terms of `dealId`) stands and what its seller was paid for it, net
    /// of protocol fees (early releases included; bond returns and refunds excluded). State None when `deal`
    /// is not the terms of `dealId`. The reputation registry weighs ratings by `paid`.
    function settlement(uint256 dealId, Deal calldata deal) external view returns (DealState state, uint256 paid);

    /// @notice The mutable part of a deal: state, submission time and pending cancel requests.
    function dealStatus(uint256 dealId)
        external
        view
        returns (DealState state, uint256 submittedAt, bool buyerCancelled, bool sellerCancelled);

    /// @notice True when `deal` is the current terms of `dealId`.
    function verifyTerms(uint256 dealId, Deal calldata deal) external view returns (bool);

    /// @notice keccak256(abi.encode(deal)); the top 192 bits are stored per deal.
    function hashDeal(Deal calldata deal) external pure returns (bytes32);

    /// @notice Late penalty owed if `deal` were settled having been submitted at `submittedAt`.
    function latePenalty(Deal calldata deal, uint256 submittedAt) external pure returns (uint256);

    /// @notice Solvency figures for `asset`: balance == locked + credits + fees (DESIGN §6.1; donations
    /// sent straight to the contract only add to the balance).
    function totals(address asset) external view returns (uint256 locked, uint256 credits, uint256 fees);

    /// @notice The id the next deal will get.
    function nextDealId() external view returns (uint256);

    /// @notice Protocol fee in basis points (immutable, at most 500).
    function feeBps() external view returns (uint256);

    /// @notice Receiver of protocol fees (immutable).
    function feeRecipient() external view returns (address);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAuctionBase} from "./IAuctionBase.sol";
import {AuctionStatus, DealTemplate, SealedParams} from "../libraries/AuctionTypes.sol";

/// @title ISealedBidAuction
/// @notice Sealed-bid commit-reveal auctions, first-price or second-price (Vickrey) per auction.
///
/// Commit (while `now <= commitEnd`): a bidder sends
///   commitment = keccak256(abi.encode(bidder, auctionId, block.chainid, address(this), amount, salt))
/// with a deposit >= its bid. The deposit is public: a bidder hides its bid by posting a deposit chosen
/// independently of it (the Python client's default rounds up to a coarse bucket). One commitment per bidder
/// and auction.
/// Reveal (while `commitEnd < now <= revealEnd`): the committer discloses `amount` and `salt`; the bidder in
/// the hash is `msg.sender`, so a commitment copied by another address can never be revealed by it.
/// A revealed bid is eligible when `reserve <= amount <= deposit`; ineligible reveals are refunded in full.
/// Winner: the highest eligible bid; on a tie the bid revealed first wins (the later equal bid becomes the
/// second price, so under Vickrey the winner pays the tied amount). Price: first-price pays its bid;
/// Vickrey pays max(second-highest eligible bid, reserve).
/// Non-revealers: a bidder that never reveals forfeits `penaltyBps` of its deposit to the winner and
/// reclaims the rest after `revealEnd` (no winner: nothing is forfeited). Without a penalty, a bidder could
/// commit several bids and reveal only the one that suits it, and a seller's own bidders could commit a
/// ladder and reveal only the rung just under the winner to raise a Vickrey price; the penalty prices that
/// option, and because it goes to the winner (the party a raised price harms) and never to the seller, a
/// seller's shill ladder costs it the forfeits. Vickrey auctions therefore need `penaltyBps > 0`.
/// The seller posts `terms.bond` with `create` (the template must name an arbiter); settlement opens a
/// Funded deal with it posted, and a sale without a winner returns it.
/// Deposits are pulled back with `reclaim`: losers as soon as they are revealed and not leading, the winner
/// (deposit minus price) after settlement, non-revealers after `revealEnd`. No cancellation once created.
interface ISealedBidAuction is IAuctionBase {
    /// @notice A sealed-bid auction was created by `seller`.
    event SealedAuctionCreated(uint256 indexed auctionId, address indexed seller, SealedParams params, DealTemplate terms);
    /// @notice `bidder` committed `commitment` with `deposit` (what arrived).
    event BidCommitted(uint256 indexed auctionId, address indexed bidder, bytes32 commitment, uint256 deposit);
    /// @notice `bidder` revealed `amount`; `eligible` when `reserve <= amount <= deposit`.
    event BidRevealed(uint256 indexed auctionId, address indexed bidder, uint256 amount, bool eligible);
    /// @notice `bidder` got `refund` of its deposit back; `penalty` went to the winner (non-revealers only).
    event DepositReclaimed(uint256 indexed auctionId, address indexed bidder, uint256 refund, uint256 penalty);

    /// @notice `bidder` already committed to this auction.
    error AuctionAlreadyCommitted(uint256 auctionId, address bidder);
    /// @notice `bidder` has no (unreclaimed) commitment in this auction.
    error AuctionNoCommitment(uint256 auctionId, address bidder);
    /// @notice `bidder` already revealed.
    error AuctionAlreadyRevealed(uint256 auctionId, address bidder);
    /// @notice The revealed values (and the caller as bidder) do not hash to the stored commitment/deposit.
    error AuctionInvalidReveal(uint256 auctionId, address bidder);
    /// @notice The reveal window is `(opensAfter, closesAt]`; `now` is outside it.
    error AuctionRevealWindow(uint256 auctionId, uint256 opensAfter, uint256 closesAt, uint256 now);

    /// @notice Stored state of a sealed-bid auction.
    struct SealedAuctionView {
        address seller;
        address asset;
        address highBidder;
        uint256 highBid;
        uint256 secondBid;
        uint256 reserve;
        uint256 commitEnd;
        uint256 revealEnd;
        uint256 penaltyBps;
        bool vickrey;
        AuctionStatus status;
        bytes32 templateHash;
    }

    /// @notice Create an auction selling under `terms` (the seller is the caller), posting the seller bond
    /// `terms.bond` (ETH: as `msg.value`; ERC-20: approve it first).
    function create(SealedParams calldata params, DealTemplate calldata terms)
        external
        payable
        returns (uint256 auctionId);

    /// @notice Commit to a bid with a `deposit` >= the bid (ETH: as `msg.value`; ERC-20: approve it).
    function commit(uint256 auctionId, bytes32 commitment, uint256 deposit) external payable;

    /// @notice Reveal the committed `amount` and `salt`; `deposit` is what the commit recorded.
    function reveal(uint256 auctionId, uint256 amount, bytes32 salt, uint256 deposit) external;

    /// @notice After `revealEnd`, anyone settles: the winner's price opens an escrow deal.
    function settle(uint256 auctionId, DealTemplate calldata terms) external returns (uint256 dealId);

    /// @notice Take back the caller's deposit (minus the price for the winner, minus the penalty for a
    /// non-revealer). `commitment` and `deposit` (as committed) are checked only for unrevealed bids.
    function reclaim(uint256 auctionId, bytes32 commitment, uint256 deposit) external returns (uint256 refund);

    /// @notice keccak256(abi.encode(bidder, auctionId, block.chainid, address(this), amount, salt)).
    function commitmentOf(address bidder, uint256 auctionId, uint256 amount, bytes32 salt)
        external
        view
        returns (bytes32);

    /// @notice What the current leader would pay if the auction settled now.
    function clearingPrice(uint256 auctionId) external view returns (uint256);

    /// @notice The stored bid record of `bidder`: `revealed`, and for revealed bids `amount` and `deposit`.
    function bidOf(uint256 auctionId, address bidder)
        external
        view
        returns (bool committed, bool revealed, uint256 amount, uint256 deposit);

    /// @notice The stored state of `auctionId`.
    function getAuction(uint256 auctionId) external view returns (SealedAuctionView memory);
}

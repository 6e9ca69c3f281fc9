// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAuctionBase} from "./IAuctionBase.sol";
import {AuctionStatus, DealTemplate, ProcurementParams} from "../libraries/AuctionTypes.sol";

/// @title IProcurementAuction
/// @notice Reverse (procurement) auctions for buying a service. The buyer locks a `budget` and publishes
/// weights; providers bid (price, delivery time, bond) and the lowest
///   score = priceWeight * price + timeWeight * deliverySeconds
/// wins. A bid is valid when `0 < price <= budget`, `deliverySeconds <= maxDelivery` and its bond is at
/// least the template's `bond`. Open mode: a bid must score strictly lower than the best so far (ties: the
/// earlier bid stands); the displaced provider's bond is credited back. Sealed mode: commit
///   commitment = keccak256(abi.encode(provider, auctionId, block.chainid, address(this), price, deliverySeconds, salt))
/// with the bond as deposit, reveal after `bidEnd` (ties: first revealed wins); a provider that never
/// reveals forfeits `penaltyBps` of its bond to the buyer (same reasoning as {ISealedBidAuction}).
/// Settlement opens the escrow deal buyer -> winner for the winning price, with the winner's bond posted,
/// `promisedBy = settlement + deliverySeconds` (late penalties run from there) and
/// `deliverBy = promisedBy + terms.deliveryDelay`; the unspent budget goes back to the buyer.
/// A promised delivery time binds: with `timeWeight > 0` the deal's late penalty is at least
/// `ceil(timeWeight * 3600 * 10_000 / (priceWeight * price))` bps per hour (each second late costs what it was
/// worth in the score; at most 65,535 bps/h, the maximum without a price weight), capped at the whole price.
interface IProcurementAuction is IAuctionBase {
    /// @notice `buyer` locked `params.budget` (what arrived) and opened a procurement auction.
    event ProcurementCreated(uint256 indexed auctionId, address indexed buyer, ProcurementParams params, DealTemplate terms);
    /// @notice Open mode: `provider` now has the best offer. The previous best provider's bond was credited.
    event OfferPlaced(
        uint256 indexed auctionId, address indexed provider, uint256 price, uint256 deliverySeconds, uint256 bond, uint256 score
    );
    /// @notice Sealed mode: `provider` committed with `bond` (what arrived) as deposit.
    event OfferCommitted(uint256 indexed auctionId, address indexed provider, bytes32 commitment, uint256 bond);
    /// @notice Sealed mode: `provider` revealed its offer; `eligible` when it meets budget, time and bond rules.
    event OfferRevealed(
        uint256 indexed auctionId, address indexed provider, uint256 price, uint256 deliverySeconds, uint256 score, bool eligible
    );
    /// @notice Sealed mode: `provider` got `refund` of its bond back; `penalty` went to the buyer.
    event BondReclaimed(uint256 indexed auctionId, address indexed provider, uint256 refund, uint256 penalty);

    /// @notice The action needs the other mode (open vs sealed).
    error AuctionWrongMode(uint256 auctionId);
    /// @notice The offer's `score` does not beat `bestScore` (lower wins; equal does not beat).
    error AuctionScoreNotBetter(uint256 auctionId, uint256 score, uint256 bestScore);
    /// @notice The offer breaks a rule: price above `budget` or zero, delivery above the maximum, or bond
    /// below the minimum.
    error AuctionInvalidOffer(uint256 auctionId, uint256 price, uint256 deliverySeconds, uint256 bond);
    /// @notice `provider` already committed to this auction.
    error AuctionAlreadyCommitted(uint256 auctionId, address bidder);
    /// @notice `provider` has no (unreclaimed) commitment in this auction.
    error AuctionNoCommitment(uint256 auctionId, address bidder);
    /// @notice `provider` already revealed.
    error AuctionAlreadyRevealed(uint256 auctionId, address bidder);
    /// @notice The revealed values (and the caller as provider) do not hash to the stored commitment/bond.
    error AuctionInvalidReveal(uint256 auctionId, address bidder);
    /// @notice The reveal window is `(opensAfter, closesAt]`; `now` is outside it.
    error AuctionRevealWindow(uint256 auctionId, uint256 opensAfter, uint256 closesAt, uint256 now);

    /// @notice Stored state of a procurement auction.
    struct ProcurementView {
        address buyer;
        address asset;
        address bestProvider;
        uint256 bestPrice;
        uint256 bestDelivery;
        uint256 bestBond;
        uint256 budget;
        uint256 bidEnd;
        uint256 revealEnd;
        uint256 penaltyBps;
        bool sealedBids;
        uint256 priceWeight;
        uint256 timeWeight;
        uint256 maxDelivery;
        uint256 minBond;
        AuctionStatus status;
        bytes32 templateHash;
    }

    /// @notice Lock the budget (ETH: `msg.value == params.budget`; ERC-20: approve it) and open the auction.
    function create(ProcurementParams calldata params, DealTemplate calldata terms)
        external
        payable
        returns (uint256 auctionId);

    /// @notice Open mode: offer `price` and `deliverySeconds`, posting `bond` (ETH: as `msg.value`).
    function bid(uint256 auctionId, uint256 price, uint256 deliverySeconds, uint256 bond) external payable;

    /// @notice Sealed mode: commit to an offer, posting `bond` as the deposit.
    function commit(uint256 auctionId, bytes32 commitment, uint256 bond) external payable;

    /// @notice Sealed mode: reveal the committed offer.
    function reveal(uint256 auctionId, uint256 price, uint256 deliverySeconds, bytes32 salt, uint256 bond) external;

    /// @notice After the end, anyone settles into an escrow deal (or returns the budget without a valid offer).
    function settle(uint256 auctionId, DealTemplate calldata terms) external returns (uint256 dealId);

    /// @notice Sealed mode: take back the caller's bond (not the winner's after a sale; minus the penalty for a
    /// non-revealer). `commitment` and `bond` are checked only for unrevealed offers.
    function reclaim(uint256 auctionId, bytes32 commitment, uint256 bond) external returns (uint256 refund);

    /// @notice priceWeight * price + timeWeight * deliverySeconds for `auctionId`'s weights.
    function scoreOf(uint256 auctionId, uint256 price, uint256 deliverySeconds) external view returns (uint256);

    /// @notice keccak256(abi.encode(provider, auctionId, block.chainid, address(this), price, deliverySeconds, salt)).
    function commitmentOf(address provider, uint256 auctionId, uint256 price, uint256 deliverySeconds, bytes32 salt)
        external
        view
        returns (bytes32);

    /// @notice The stored state of `auctionId`.
    function getAuction(uint256 auctionId) external view returns (ProcurementView memory);
}

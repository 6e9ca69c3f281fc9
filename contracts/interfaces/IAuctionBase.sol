// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AuctionStatus, DealTemplate} from "../libraries/AuctionTypes.sol";
import {Deal} from "../libraries/EscrowTypes.sol";
import {ICredits} from "./ICredits.sol";

/// @title IAuctionBase
/// @notice What every auction singleton (English, Dutch, sealed-bid, procurement) shares: settlement into an
/// `AgentEscrow` deal through its market entry `openFor`, withdrawable credits for payouts that could not be
/// pushed (outbid bidders, refunds to reverting receivers; {ICredits}: an outbid bidder's refund is credited
/// without `PayoutCredited`, the `BidPlaced` or `OfferPlaced` that displaced it reports it), and the errors
/// common to all kinds.
///
/// Time windows are inclusive for the party that must act; the next phase opens one second later
/// (bids while `now <= end`, settle when `now > end`), as in the escrow.
/// Settlement is permissionless after the end and happens exactly once. If the escrow no longer accepts
/// this market, or the winner is the template's arbiter, the sale is void: status NoSale and every coin
/// goes back (to credits or reclaimable deposits), so no coin is ever locked without an exit.
/// Sell-side auctions (English, Dutch, sealed) bind both sides once they clear: the seller posts the
/// template's bond when it creates the auction (returned if nothing sells) and the template names an
/// arbiter; the winner's payment is locked when it bids. Settlement opens a Funded escrow deal with the
/// bond posted, so neither party can cancel it alone, a seller that never delivers loses its bond to the
/// buyer (escrow `refund`), and a buyer that will not pay for a delivery must convince the arbiter.
interface IAuctionBase is ICredits {
    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice The auction closed: `winner` pays `price` into escrow deal `dealId`. All three are zero when
    /// there was no valid bid (or the sale was void); funds then went back to their owners.
    event AuctionSettled(uint256 indexed auctionId, address indexed winner, uint256 price, uint256 dealId);
    /// @notice The creator cancelled the auction before any bid.
    event AuctionCancelled(uint256 indexed auctionId);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice The auction is in `status`, which does not allow this action.
    error AuctionInvalidState(uint256 auctionId, AuctionStatus status);
    /// @notice Bidding has not opened yet (`now` < `opensAt`).
    error AuctionNotOpen(uint256 auctionId, uint256 opensAt, uint256 now);
    /// @notice Bidding (or committing) closed at `closedAt` (`now` > `closedAt`).
    error AuctionBiddingClosed(uint256 auctionId, uint256 closedAt, uint256 now);
    /// @notice The auction ends at `endsAt` (`now` <= `endsAt`): it cannot be settled yet.
    error AuctionNotEnded(uint256 auctionId, uint256 endsAt, uint256 now);
    /// @notice `caller` may not do this (not the creator, or the creator/arbiter trying to bid).
    error AuctionUnauthorized(uint256 auctionId, address caller);
    /// @notice The `DealTemplate` passed does not hash to the one the auction was created with.
    error AuctionTermsMismatch(uint256 auctionId);
    /// @notice Times must satisfy `now <= start < end` (sealed: `now < commitEnd < revealEnd`).
    error AuctionInvalidTimes(uint256 start, uint256 end, uint256 now);
    /// @notice A basis-point value above 10,000.
    error AuctionInvalidBps(uint256 bps);
    /// @notice An amount that is zero where it must not be, inconsistent, or above 2^96 - 1.
    error AuctionInvalidAmount(uint256 amount);
    /// @notice Template delays must satisfy `0 < deliveryDelay`, `promiseDelay <= deliveryDelay`, bps <= 10,000.
    error AuctionInvalidTerms();
    /// @notice `msg.value` must be `expected` (the amount for ETH auctions, zero for ERC-20 ones).
    error AuctionWrongValue(uint256 expected, uint256 sent);
    /// @notice The bid (what actually arrived) `bid` is below `minimum` (reserve, or high bid + increment).
    error AuctionBidTooLow(uint256 auctionId, uint256 bid, uint256 minimum);
    /// @notice A sell-side auction needs a seller bond (`bond` > 0, posted at creation) and an arbiter, so
    /// that neither side can unwind a cleared sale without losing something to the other.
    error AuctionUnprotectedSale(uint256 bond, address arbiter);
    /// @notice The seller bond `bond` exceeds `minimumPrice`, the lowest price the sale can clear at (reserve,
    /// or the Dutch floor).
    error AuctionBondAbovePrice(uint256 bond, uint256 minimumPrice);
    /// @notice The escrow refused this market (deauthorised) or the buyer is the arbiter: no deal possible.
    error AuctionDealUnavailable(uint256 auctionId);
    /// @notice Create: the escrow no longer lists this auction house for new sales (`isListed` is false).
    error AuctionNotListed(address escrow);

    // ---------------------------------------------------------------------------------------------
    // Shared API
    // ---------------------------------------------------------------------------------------------

    /// @notice keccak256(abi.encode(terms)): what an auction stores of its deal template.
    function hashTemplate(DealTemplate calldata terms) external pure returns (bytes32);

    /// @notice The escrow deals are opened in.
    function escrow() external view returns (address);

    /// @notice The id the next auction will get.
    function nextAuctionId() external view returns (uint256);

    /// @notice Internal step of settlement (external so a refused opening rolls back alone and voids the
    /// sale): fund and open `deal` in the escrow with coins this contract holds. Only this contract may call
    /// it (`CreditsOnlySelf`).
    function openHeldSelf(Deal calldata deal) external returns (uint256 dealId);
}

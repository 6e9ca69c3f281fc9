// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAuctionBase} from "./IAuctionBase.sol";
import {AuctionStatus, DealTemplate, EnglishParams} from "../libraries/AuctionTypes.sol";

/// @title IEnglishAuction
/// @notice Ascending open auctions. The first bid must reach the reserve; each later bid must exceed the
/// high bid by `max(1, highBid * minIncrementBps / 10_000)`. A bid in the last `extension` seconds
/// (`endTime - now < extension`) moves the end `extension` seconds later (anti-sniping).
/// The outbid party's bid is credited to it in full (pull with `withdraw`), so a bidder that cannot receive
/// coins never blocks the auction. Ties: an equal bid never outbids, so the earlier bidder keeps the lead.
/// The seller posts `terms.bond` with `create` (the template must name an arbiter); it backs the escrow deal
/// from settlement on and comes back on cancellation or when nothing sells.
/// The seller may cancel only while there is no bid; the seller cannot bid. A winner that is the template's
/// arbiter voids the sale at settlement (its bid is credited back).
interface IEnglishAuction is IAuctionBase {
    /// @notice An English auction was created by `seller`; `terms` is the escrow template whose hash is stored.
    event EnglishAuctionCreated(uint256 indexed auctionId, address indexed seller, EnglishParams params, DealTemplate terms);
    /// @notice `bidder` now leads with `amount` (what arrived); the auction ends at `endTime`. The previous
    /// leader, if any, was credited its bid.
    event BidPlaced(uint256 indexed auctionId, address indexed bidder, uint256 amount, uint256 endTime);

    /// @notice Stored state of an English auction.
    struct EnglishAuctionView {
        address seller;
        address asset;
        address highBidder;
        uint256 highBid;
        uint256 reserve;
        uint256 startTime;
        uint256 endTime;
        uint256 extension;
        uint256 minIncrementBps;
        AuctionStatus status;
        bytes32 templateHash;
    }

    /// @notice Create an auction selling under `terms` (the seller is the caller), posting the seller bond
    /// `terms.bond` (ETH: as `msg.value`; ERC-20: approve it first).
    function create(EnglishParams calldata params, DealTemplate calldata terms)
        external
        payable
        returns (uint256 auctionId);

    /// @notice Bid `amount` (ETH: send it as `msg.value`; ERC-20: approve it first).
    function bid(uint256 auctionId, uint256 amount) external payable;

    /// @notice The seller cancels an auction that has no bid; its bond comes back.
    function cancel(uint256 auctionId) external;

    /// @notice After the end, anyone settles: the high bid and the seller's bond open a Funded escrow deal
    /// buyer=winner, seller=seller; without a bid the auction closes as NoSale and the bond goes back.
    function settle(uint256 auctionId, DealTemplate calldata terms) external returns (uint256 dealId);

    /// @notice The smallest bid that would lead now (reserve before the first bid).
    function minimumBid(uint256 auctionId) external view returns (uint256);

    /// @notice The stored state of `auctionId`.
    function getAuction(uint256 auctionId) external view returns (EnglishAuctionView memory);
}

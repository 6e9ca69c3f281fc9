// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAuctionBase} from "./IAuctionBase.sol";
import {AuctionStatus, DealTemplate, DutchParams} from "../libraries/AuctionTypes.sol";

/// @title IDutchAuction
/// @notice Descending-price auctions. The price falls linearly from `startPrice` at `startTime` to
/// `floorPrice` at `endTime`:
///   price(t) = startPrice - (startPrice - floorPrice) * (t - startTime) / (endTime - startTime)
/// with the division rounding down (so the price rounds up, in the seller's favour), clamped to
/// [floorPrice, startPrice]. The first `buy` in [startTime, endTime] wins at the price of its block and
/// settles in the same transaction into an escrow deal; ETH overpayment is returned at once (credited if
/// the buyer refuses it). The seller posts `terms.bond` with `create` (the template must name an arbiter);
/// a purchase opens a Funded deal with that bond posted. The seller cancels an unsold auction at any time,
/// and after `endTime` anyone may: the bond goes back to the seller.
interface IDutchAuction is IAuctionBase {
    /// @notice A Dutch auction was created by `seller`; `terms` is the escrow template whose hash is stored.
    event DutchAuctionCreated(uint256 indexed auctionId, address indexed seller, DutchParams params, DealTemplate terms);

    /// @notice Price `price` was above the buyer's `maxPrice`.
    error AuctionPriceAboveMax(uint256 auctionId, uint256 price, uint256 maxPrice);

    /// @notice Stored state of a Dutch auction.
    struct DutchAuctionView {
        address seller;
        address asset;
        uint256 startPrice;
        uint256 floorPrice;
        uint256 startTime;
        uint256 endTime;
        AuctionStatus status;
        bytes32 templateHash;
    }

    /// @notice Create an auction selling under `terms` (the seller is the caller), posting the seller bond
    /// `terms.bond` (ETH: as `msg.value`; ERC-20: approve it first).
    function create(DutchParams calldata params, DealTemplate calldata terms)
        external
        payable
        returns (uint256 auctionId);

    /// @notice Buy at the current price, at most `maxPrice`. ETH: send at least the price (the excess comes
    /// back); ERC-20: approve at least the price, which is moved straight into the escrow.
    function buy(uint256 auctionId, uint256 maxPrice, DealTemplate calldata terms)
        external
        payable
        returns (uint256 dealId, uint256 price);

    /// @notice The seller (or anyone, after `endTime`) closes an auction nobody bought; the bond goes back.
    function cancel(uint256 auctionId) external;

    /// @notice The price a purchase in a block with timestamp `timestamp` pays.
    function priceAt(uint256 auctionId, uint256 timestamp) external view returns (uint256);

    /// @notice The price a purchase would pay in a block with the current timestamp.
    function currentPrice(uint256 auctionId) external view returns (uint256);

    /// @notice The stored state of `auctionId`.
    function getAuction(uint256 auctionId) external view returns (DutchAuctionView memory);
}

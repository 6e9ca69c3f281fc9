// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {AuctionBase} from "./AuctionBase.sol";
import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {IDutchAuction} from "../interfaces/IDutchAuction.sol";
import {AuctionStatus, DealTemplate, DutchParams} from "../libraries/AuctionTypes.sol";
import {Deal} from "../libraries/EscrowTypes.sol";

/// @title DutchAuction
/// @notice See {IDutchAuction}. A purchase reads two words (seller/times/status, prices), writes one, and
/// opens the deal; ERC-20 payments go from the buyer straight to the escrow (one transfer, no hop).
contract DutchAuction is AuctionBase, IDutchAuction {
    using SafeERC20 for IERC20;

    struct Auction {
        address seller; //        slot 0
        uint40 startTime;
        uint40 endTime;
        AuctionStatus status;
        uint128 startPrice; //    slot 1
        uint128 floorPrice;
        bytes32 templateHash; //  slot 2
    }

    /// @dev Read on the purchase path only for ERC-20 auctions; ETH bonds arrive exactly as `terms.bond`.
    struct Stake {
        address asset;
        uint96 bond; // the seller's bond, as it arrived
    }

    mapping(uint256 auctionId => Auction) private _auctions;
    mapping(uint256 auctionId => Stake) private _stakes;

    constructor(address escrow_) AuctionBase(escrow_) {}

    /// @inheritdoc IDutchAuction
    function create(DutchParams calldata p, DealTemplate calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 auctionId)
    {
        if (p.floorPrice == 0 || p.floorPrice > p.startPrice || p.startPrice > type(uint96).max) {
            revert AuctionInvalidAmount(p.floorPrice == 0 ? 0 : p.startPrice);
        }
        if (p.startTime < block.timestamp || p.endTime <= p.startTime) {
            revert AuctionInvalidTimes(p.startTime, p.endTime, block.timestamp);
        }
        _validateTerms(terms);
        uint96 bond = _takeSellerBond(terms, p.floorPrice);
        auctionId = nextAuctionId++;
        _auctions[auctionId] = Auction({
            seller: msg.sender,
            startTime: p.startTime,
            endTime: p.endTime,
            status: AuctionStatus.Active,
            startPrice: p.startPrice,
            floorPrice: p.floorPrice,
            templateHash: hashTemplate(terms)
        });
        _stakes[auctionId] = Stake({asset: terms.asset, bond: bond});
        emit DutchAuctionCreated(auctionId, msg.sender, p, terms);
    }

    /// @inheritdoc IDutchAuction
    function buy(uint256 auctionId, uint256 maxPrice, DealTemplate calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 dealId, uint256 price)
    {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        uint256 start = a.startTime;
        uint256 end = a.endTime;
        if (block.timestamp < start) revert AuctionNotOpen(auctionId, start, block.timestamp);
        if (block.timestamp > end) revert AuctionBiddingClosed(auctionId, end, block.timestamp);
        _checkTerms(auctionId, a.templateHash, terms);
        price = _price(a.startPrice, a.floorPrice, start, end, block.timestamp);
        if (price > maxPrice) revert AuctionPriceAboveMax(auctionId, price, maxPrice);
        if (msg.sender == terms.creator) revert AuctionUnauthorized(auctionId, msg.sender);
        Deal memory deal = _sellDeal(terms, msg.sender, terms.creator, price);
        if (!_dealPossible(deal)) revert AuctionDealUnavailable(auctionId);
        a.status = AuctionStatus.Settled;
        address asset = terms.asset;
        if (asset == address(0)) {
            if (msg.value < price) revert AuctionBidTooLow(auctionId, msg.value, price);
            // the seller's bond was posted at creation and backs the deal from now on
            dealId = IAgentEscrow(escrow).openFor{value: price + terms.bond}(deal, true);
        } else {
            if (msg.value != 0) revert AuctionWrongValue(0, msg.value);
            uint256 bond = _stakes[auctionId].bond;
            deal.bond = uint128(bond);
            IERC20(asset).safeTransferFrom(msg.sender, escrow, price);
            uint256 sent = _sendOut(asset, escrow, bond);
            // in surplus the seller's bond left with its share: the deal carries it (Review 2)
            if (sent > bond && sent <= type(uint128).max) deal.bond = uint128(sent);
            dealId = IAgentEscrow(escrow).openFor(deal, true);
        }
        emit AuctionSettled(auctionId, msg.sender, price, dealId);
        // slither-disable-next-line reentrancy-benign,reentrancy-eth -- prior call is the immutable escrow; buy is nonReentrant; an ETH refund never writes the ERC-20 books
        if (msg.value > price) _pay(address(0), msg.sender, msg.value - price);
    }

    /// @inheritdoc IDutchAuction
    function cancel(uint256 auctionId) external nonReentrant {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        address seller = a.seller;
        if (msg.sender != seller && block.timestamp <= a.endTime) revert AuctionUnauthorized(auctionId, msg.sender);
        a.status = AuctionStatus.Cancelled;
        emit AuctionCancelled(auctionId);
        Stake storage stake = _stakes[auctionId];
        _payOut(stake.asset, seller, stake.bond);
    }

    /// @inheritdoc IDutchAuction
    function priceAt(uint256 auctionId, uint256 timestamp) public view returns (uint256) {
        Auction storage a = _auctions[auctionId];
        return _price(a.startPrice, a.floorPrice, a.startTime, a.endTime, timestamp);
    }

    /// @inheritdoc IDutchAuction
    function currentPrice(uint256 auctionId) external view returns (uint256) {
        return priceAt(auctionId, block.timestamp);
    }

    /// @inheritdoc IDutchAuction
    function getAuction(uint256 auctionId) external view returns (DutchAuctionView memory v) {
        Auction storage a = _auctions[auctionId];
        v = DutchAuctionView({
            seller: a.seller,
            asset: _stakes[auctionId].asset,
            startPrice: a.startPrice,
            floorPrice: a.floorPrice,
            startTime: a.startTime,
            endTime: a.endTime,
            status: a.status,
            templateHash: a.templateHash
        });
    }

    function _price(uint256 startPrice, uint256 floorPrice, uint256 start, uint256 end, uint256 t)
        private
        pure
        returns (uint256)
    {
        if (t <= start) return startPrice;
        if (t >= end) return floorPrice;
        return startPrice - ((startPrice - floorPrice) * (t - start)) / (end - start);
    }
}

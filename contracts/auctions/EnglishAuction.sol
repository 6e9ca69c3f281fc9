// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AuctionBase} from "./AuctionBase.sol";
import {IEnglishAuction} from "../interfaces/IEnglishAuction.sol";
import {AuctionStatus, DealTemplate, EnglishParams} from "../libraries/AuctionTypes.sol";
import {Deal} from "../libraries/EscrowTypes.sol";

/// @title EnglishAuction
/// @notice See {IEnglishAuction}. Storage: the lead (bidder + uint96 bid) in one word and everything a bid
/// reads (reserve, times, extension, increment, status, ERC-20 flag) in a second; an outbid costs those two
/// words plus the outbid party's credit. The seller's bond sits next to the asset and is read at settlement
/// only for ERC-20 auctions (for ETH what arrived is exactly `terms.bond`).
contract EnglishAuction is AuctionBase, IEnglishAuction {
    struct Auction {
        address highBidder; //  slot 0
        uint96 highBid;
        uint96 reserve; //      slot 1
        uint40 startTime;
        uint40 endTime;
        uint32 extension;
        uint16 minIncrementBps;
        AuctionStatus status;
        bool erc20;
        address seller; //      slot 2
        address asset; //       slot 3
        uint96 bond; //         the seller's bond, as it arrived
        bytes32 templateHash; // slot 4
    }

    mapping(uint256 auctionId => Auction) private _auctions;

    constructor(address escrow_) AuctionBase(escrow_) {}

    /// @inheritdoc IEnglishAuction
    function create(EnglishParams calldata p, DealTemplate calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 auctionId)
    {
        if (p.reserve == 0) revert AuctionInvalidAmount(0);
        if (p.startTime < block.timestamp || p.endTime <= p.startTime) {
            revert AuctionInvalidTimes(p.startTime, p.endTime, block.timestamp);
        }
        if (p.minIncrementBps > BPS) revert AuctionInvalidBps(p.minIncrementBps);
        _validateTerms(terms);
        uint96 bond = _takeSellerBond(terms, p.reserve);
        auctionId = nextAuctionId++;
        Auction storage a = _auctions[auctionId];
        a.reserve = p.reserve;
        a.startTime = p.startTime;
        a.endTime = p.endTime;
        a.extension = p.extension;
        a.minIncrementBps = p.minIncrementBps;
        a.status = AuctionStatus.Active;
        a.erc20 = terms.asset != address(0);
        a.seller = msg.sender;
        a.asset = terms.asset;
        a.bond = bond;
        a.templateHash = hashTemplate(terms);
        emit EnglishAuctionCreated(auctionId, msg.sender, p, terms);
    }

    /// @inheritdoc IEnglishAuction
    function bid(uint256 auctionId, uint256 amount) external payable nonReentrant {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        uint256 end = a.endTime;
        if (block.timestamp < a.startTime) revert AuctionNotOpen(auctionId, a.startTime, block.timestamp);
        if (block.timestamp > end) revert AuctionBiddingClosed(auctionId, end, block.timestamp);
        if (msg.sender == a.seller) revert AuctionUnauthorized(auctionId, msg.sender);
        address asset = a.erc20 ? a.asset : address(0);
        uint256 received = _receive(asset, amount);
        address previous = a.highBidder;
        uint256 previousBid = a.highBid;
        uint256 minimum = previous == address(0) ? a.reserve : _nextMinimum(previousBid, a.minIncrementBps);
        if (received < minimum) revert AuctionBidTooLow(auctionId, received, minimum);
        a.highBidder = msg.sender;
        a.highBid = _toUint96(received);
        uint256 extension = a.extension;
        if (end - block.timestamp < extension) {
            end += extension;
            a.endTime = uint40(end);
        }
        emit BidPlaced(auctionId, msg.sender, received, end);
        if (previous != address(0)) _credits[previous][asset] += previousBid;
    }

    /// @inheritdoc IEnglishAuction
    function cancel(uint256 auctionId) external nonReentrant {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active || a.highBidder != address(0)) {
            revert AuctionInvalidState(auctionId, a.status);
        }
        if (msg.sender != a.seller) revert AuctionUnauthorized(auctionId, msg.sender);
        a.status = AuctionStatus.Cancelled;
        emit AuctionCancelled(auctionId);
        _payOut(a.erc20 ? a.asset : address(0), msg.sender, a.bond);
    }

    /// @inheritdoc IEnglishAuction
    function settle(uint256 auctionId, DealTemplate calldata terms) external nonReentrant returns (uint256 dealId) {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        if (block.timestamp <= a.endTime) revert AuctionNotEnded(auctionId, a.endTime, block.timestamp);
        _checkTerms(auctionId, a.templateHash, terms);
        address winner = a.highBidder;
        uint256 price = a.highBid;
        // ETH bonds arrive exactly; ERC-20 ones are measured at creation (fee-on-transfer)
        uint256 bond = a.erc20 ? a.bond : terms.bond;
        if (winner != address(0)) {
            Deal memory deal = _sellDeal(terms, winner, terms.creator, price);
            deal.bond = uint128(bond);
            // effects before the escrow call: the sale is settled unless the escrow refuses it (then NoSale below)
            a.status = AuctionStatus.Settled;
            if (_dealPossible(deal)) dealId = _tryOpenHeld(deal);
            if (dealId != 0) {
                emit AuctionSettled(auctionId, winner, price, dealId);
                return dealId;
            }
            // void sale (the escrow would not take the deal, or refused it): the winner gets its bid back
            _creditHeld(winner, terms.asset, price);
        }
        // slither-disable-next-line reentrancy-eth,reentrancy-no-eth -- reached after a call only when the immutable escrow refused the deal (settle is nonReentrant)
        a.status = AuctionStatus.NoSale;
        emit AuctionSettled(auctionId, address(0), 0, 0);
        _payOut(terms.asset, terms.creator, bond); // nothing sold: the seller's bond goes back
    }

    /// @inheritdoc IEnglishAuction
    function minimumBid(uint256 auctionId) external view returns (uint256) {
        Auction storage a = _auctions[auctionId];
        return a.highBidder == address(0) ? a.reserve : _nextMinimum(a.highBid, a.minIncrementBps);
    }

    /// @inheritdoc IEnglishAuction
    function getAuction(uint256 auctionId) external view returns (EnglishAuctionView memory v) {
        Auction storage a = _auctions[auctionId];
        v = EnglishAuctionView({
            seller: a.seller,
            asset: a.asset,
            highBidder: a.highBidder,
            highBid: a.highBid,
            reserve: a.reserve,
            startTime: a.startTime,
            endTime: a.endTime,
            extension: a.extension,
            minIncrementBps: a.minIncrementBps,
            status: a.status,
            templateHash: a.templateHash
        });
    }

    function _nextMinimum(uint256 highBid, uint256 bps) private pure returns (uint256) {
        uint256 step = (highBid * bps) / BPS;
        return highBid + (step == 0 ? 1 : step);
    }
}

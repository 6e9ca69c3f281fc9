// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AuctionBase} from "./AuctionBase.sol";
import {ISealedBidAuction} from "../interfaces/ISealedBidAuction.sol";
import {AuctionStatus, BidRecord, BidRecordLib, DealTemplate, SealedParams} from "../libraries/AuctionTypes.sol";
import {Deal} from "../libraries/EscrowTypes.sol";

/// @title SealedBidAuction
/// @notice See {ISealedBidAuction}. One storage word per bidder, a {BidRecord}: before the reveal
/// `keccak256(abi.encode(commitment, deposit)) >> 1` (top bit clear), after it
/// `1 << 255 | amount << 96 | deposit`. The leader and the second price live in two packed words.
contract SealedBidAuction is AuctionBase, ISealedBidAuction {
    struct Auction {
        address highBidder; //   slot 0
        uint96 highBid;
        address seller; //       slot 1
        uint40 commitEnd;
        uint40 revealEnd;
        uint16 penaltyBps;
        uint96 secondBid; //     slot 2
        uint96 reserve;
        AuctionStatus status;
        bool vickrey;
        bool erc20;
        address asset; //        slot 3
        uint96 bond; //          the seller's bond, as it arrived
        bytes32 templateHash; // slot 4
    }

    uint256 private constant U96 = type(uint96).max;

    mapping(uint256 auctionId => Auction) private _auctions;
    mapping(uint256 auctionId => mapping(address bidder => BidRecord)) private _bids;

    constructor(address escrow_) AuctionBase(escrow_) {}

    /// @inheritdoc ISealedBidAuction
    function create(SealedParams calldata p, DealTemplate calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 auctionId)
    {
        if (p.reserve == 0) revert AuctionInvalidAmount(0);
        if (p.commitEnd <= block.timestamp || p.revealEnd <= p.commitEnd) {
            revert AuctionInvalidTimes(p.commitEnd, p.revealEnd, block.timestamp);
        }
        // Vickrey needs a non-reveal penalty: without one, unrevealed shill commitments are free options
        if (p.penaltyBps > BPS || (p.vickrey && p.penaltyBps == 0)) revert AuctionInvalidBps(p.penaltyBps);
        _validateTerms(terms);
        uint96 bond = _takeSellerBond(terms, p.reserve);
        auctionId = nextAuctionId++;
        Auction storage a = _auctions[auctionId];
        a.seller = msg.sender;
        a.commitEnd = p.commitEnd;
        a.revealEnd = p.revealEnd;
        a.penaltyBps = p.penaltyBps;
        a.reserve = p.reserve;
        a.status = AuctionStatus.Active;
        a.vickrey = p.vickrey;
        a.erc20 = terms.asset != address(0);
        a.asset = terms.asset;
        a.bond = bond;
        a.templateHash = hashTemplate(terms);
        emit SealedAuctionCreated(auctionId, msg.sender, p, terms);
    }

    /// @inheritdoc ISealedBidAuction
    function commit(uint256 auctionId, bytes32 commitment, uint256 deposit) external payable nonReentrant {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        if (block.timestamp > a.commitEnd) revert AuctionBiddingClosed(auctionId, a.commitEnd, block.timestamp);
        if (msg.sender == a.seller) revert AuctionUnauthorized(auctionId, msg.sender);
        mapping(address => BidRecord) storage bids = _bids[auctionId];
        if (!bids[msg.sender].isEmpty()) revert AuctionAlreadyCommitted(auctionId, msg.sender);
        uint256 received = _toUint96(_receive(a.erc20 ? a.asset : address(0), deposit));
        bids[msg.sender] = BidRecordLib.sealedOf(commitment, received);
        emit BidCommitted(auctionId, msg.sender, commitment, received);
    }

    /// @inheritdoc ISealedBidAuction
    function reveal(uint256 auctionId, uint256 amount, bytes32 salt, uint256 deposit) external {
        Auction storage a = _auctions[auctionId];
        uint256 commitEnd = a.commitEnd;
        uint256 revealEnd = a.revealEnd;
        if (block.timestamp <= commitEnd || block.timestamp > revealEnd) {
            revert AuctionRevealWindow(auctionId, commitEnd, revealEnd, block.timestamp);
        }
        BidRecord record = _bids[auctionId][msg.sender];
        if (record.isEmpty()) revert AuctionNoCommitment(auctionId, msg.sender);
        if (record.isRevealed()) revert AuctionAlreadyRevealed(auctionId, msg.sender);
        if (!record.matches(commitmentOf(msg.sender, auctionId, amount, salt), deposit)) {
            revert AuctionInvalidReveal(auctionId, msg.sender);
        }
        bool eligible = amount >= a.reserve && amount <= deposit;
        _bids[auctionId][msg.sender] = BidRecordLib.revealedOf(amount > U96 ? U96 : amount, deposit);
        if (eligible) {
            uint256 high = a.highBid;
            if (amount > high) {
                if (high != 0) a.secondBid = uint96(high);
                a.highBidder = msg.sender;
                a.highBid = uint96(amount);
            } else if (amount > a.secondBid) {
                a.secondBid = uint96(amount);
            }
        }
        emit BidRevealed(auctionId, msg.sender, amount, eligible);
    }

    /// @inheritdoc ISealedBidAuction
    function settle(uint256 auctionId, DealTemplate calldata terms) external nonReentrant returns (uint256 dealId) {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        if (block.timestamp <= a.revealEnd) revert AuctionNotEnded(auctionId, a.revealEnd, block.timestamp);
        _checkTerms(auctionId, a.templateHash, terms);
        address winner = a.highBidder;
        uint256 bond = a.erc20 ? a.bond : terms.bond;
        if (winner != address(0)) {
            uint256 price = _priceOf(a);
            Deal memory deal = _sellDeal(terms, winner, terms.creator, price);
            deal.bond = uint128(bond);
            // effects before the escrow call: the sale is settled unless the escrow refuses it (then NoSale below)
            a.status = AuctionStatus.Settled;
            if (_dealPossible(deal)) dealId = _tryOpenHeld(deal);
            if (dealId != 0) {
                emit AuctionSettled(auctionId, winner, price, dealId);
                return dealId;
            }
        }
        // No eligible bid, or a void sale: every deposit stays reclaimable in full (penalties aside).
        // slither-disable-next-line reentrancy-eth,reentrancy-no-eth -- reached after a call only when the immutable escrow refused the deal (settle is nonReentrant)
        a.status = AuctionStatus.NoSale;
        emit AuctionSettled(auctionId, address(0), 0, 0);
        _payOut(terms.asset, terms.creator, bond); // nothing sold: the seller's bond goes back
    }

    /// @inheritdoc ISealedBidAuction
    function reclaim(uint256 auctionId, bytes32 commitment, uint256 deposit)
        external
        nonReentrant
        returns (uint256 refund)
    {
        Auction storage a = _auctions[auctionId];
        BidRecord record = _bids[auctionId][msg.sender];
        if (record.isEmpty()) revert AuctionNoCommitment(auctionId, msg.sender);
        AuctionStatus status = a.status;
        uint256 penalty = 0; // stays 0 for a revealed bid
        address winner = a.highBidder;
        if (record.isRevealed()) {
            refund = record.deposit();
            if (winner == msg.sender) {
                if (status == AuctionStatus.Active) revert AuctionInvalidState(auctionId, status);
                if (status == AuctionStatus.Settled) refund -= _priceOf(a);
            }
        } else {
            if (block.timestamp <= a.revealEnd) revert AuctionNotEnded(auctionId, a.revealEnd, block.timestamp);
            if (!record.matches(commitment, deposit)) revert AuctionInvalidReveal(auctionId, msg.sender);
            // The forfeit goes to the winner (fixed once the reveal window is over), never to the seller: a
            // seller's unrevealed shill commitments would otherwise cost it nothing. No winner: nobody was
            // harmed by the missing reveal, so nothing is forfeited.
            if (winner != address(0)) penalty = (deposit * a.penaltyBps) / BPS;
            refund = deposit - penalty;
        }
        _bids[auctionId][msg.sender] = BidRecord.wrap(0); // cleared (storage refund)
        emit DepositReclaimed(auctionId, msg.sender, refund, penalty);
        address asset = a.erc20 ? a.asset : address(0);
        _payOut(asset, winner, penalty);
        _payOut(asset, msg.sender, refund);
    }

    /// @inheritdoc ISealedBidAuction
    function commitmentOf(address bidder, uint256 auctionId, uint256 amount, bytes32 salt)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(bidder, auctionId, block.chainid, address(this), amount, salt));
    }

    /// @inheritdoc ISealedBidAuction
    function clearingPrice(uint256 auctionId) external view returns (uint256) {
        Auction storage a = _auctions[auctionId];
        return a.highBidder == address(0) ? 0 : _priceOf(a);
    }

    /// @inheritdoc ISealedBidAuction
    function bidOf(uint256 auctionId, address bidder)
        external
        view
        returns (bool committed, bool revealed, uint256 amount, uint256 deposit)
    {
        BidRecord record = _bids[auctionId][bidder];
        committed = !record.isEmpty();
        revealed = record.isRevealed();
        if (revealed) {
            amount = record.amount();
            deposit = record.deposit();
        }
    }

    /// @inheritdoc ISealedBidAuction
    function getAuction(uint256 auctionId) external view returns (SealedAuctionView memory v) {
        Auction storage a = _auctions[auctionId];
        v = SealedAuctionView({
            seller: a.seller,
            asset: a.asset,
            highBidder: a.highBidder,
            highBid: a.highBid,
            secondBid: a.secondBid,
            reserve: a.reserve,
            commitEnd: a.commitEnd,
            revealEnd: a.revealEnd,
            penaltyBps: a.penaltyBps,
            vickrey: a.vickrey,
            status: a.status,
            templateHash: a.templateHash
        });
    }

    function _priceOf(Auction storage a) private view returns (uint256) {
        if (!a.vickrey) return a.highBid;
        uint256 second = a.secondBid;
        uint256 reserve = a.reserve;
        return second > reserve ? second : reserve;
    }
}

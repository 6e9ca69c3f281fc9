// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AuctionBase} from "./AuctionBase.sol";
import {IProcurementAuction} from "../interfaces/IProcurementAuction.sol";
import {AuctionStatus, BidRecord, BidRecordLib, DealTemplate, ProcurementParams} from "../libraries/AuctionTypes.sol";
import {Deal} from "../libraries/EscrowTypes.sol";

/// @title ProcurementAuction
/// @notice See {IProcurementAuction}. Sealed records are {BidRecord}s: before the reveal
/// `keccak256(abi.encode(commitment, bond)) >> 1`, after it `1 << 255 | price << 128 | delivery << 96 | bond`.
contract ProcurementAuction is AuctionBase, IProcurementAuction {
    struct Auction {
        address bestProvider; // slot 0
        uint96 bestPrice;
        address buyer; //        slot 1
        uint40 bidEnd;
        uint40 revealEnd;
        uint16 penaltyBps;
        uint96 budget; //        slot 2
        uint96 bestBond;
        uint32 bestDelivery;
        AuctionStatus status;
        bool sealedBids;
        bool erc20;
        uint64 priceWeight; //   slot 3
        uint64 timeWeight;
        uint32 maxDelivery;
        uint96 minBond;
        address asset; //        slot 4
        bytes32 templateHash; // slot 5
    }

    uint256 private constant MAX_RATE = type(uint16).max;

    mapping(uint256 auctionId => Auction) private _auctions;
    mapping(uint256 auctionId => mapping(address provider => BidRecord)) private _bids;

    constructor(address escrow_) AuctionBase(escrow_) {}

    /// @inheritdoc IProcurementAuction
    function create(ProcurementParams calldata p, DealTemplate calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 auctionId)
    {
        if (p.bidEnd <= block.timestamp || (p.sealedBids && p.revealEnd <= p.bidEnd)) {
            revert AuctionInvalidTimes(p.bidEnd, p.revealEnd, block.timestamp);
        }
        if (p.penaltyBps > BPS) revert AuctionInvalidBps(p.penaltyBps);
        if (p.priceWeight == 0 && p.timeWeight == 0) revert AuctionInvalidAmount(0);
        if (terms.bond > type(uint96).max) revert AuctionInvalidAmount(terms.bond);
        _validateTerms(terms);
        uint96 budget = _toUint96(_receive(terms.asset, p.budget));
        auctionId = nextAuctionId++;
        Auction storage a = _auctions[auctionId];
        a.buyer = msg.sender;
        a.bidEnd = p.bidEnd;
        a.revealEnd = p.sealedBids ? p.revealEnd : p.bidEnd;
        a.penaltyBps = p.penaltyBps;
        a.budget = budget;
        a.status = AuctionStatus.Active;
        a.sealedBids = p.sealedBids;
        a.erc20 = terms.asset != address(0);
        a.priceWeight = p.priceWeight;
        a.timeWeight = p.timeWeight;
        a.maxDelivery = p.maxDelivery;
        a.minBond = uint96(terms.bond);
        a.asset = terms.asset;
        a.templateHash = hashTemplate(terms);
        ProcurementParams memory shown = p;
        shown.budget = budget;
        shown.revealEnd = a.revealEnd;
        emit ProcurementCreated(auctionId, msg.sender, shown, terms);
    }

    /// @inheritdoc IProcurementAuction
    function bid(uint256 auctionId, uint256 price, uint256 deliverySeconds, uint256 bond) external payable nonReentrant {
        Auction storage a = _auctions[auctionId];
        _checkBidding(auctionId, a, false);
        address asset = a.erc20 ? a.asset : address(0);
        uint256 received = _receive(asset, bond);
        if (!_valid(a, price, deliverySeconds, received)) {
            revert AuctionInvalidOffer(auctionId, price, deliverySeconds, received);
        }
        uint256 score = _score(a, price, deliverySeconds);
        address previous = a.bestProvider;
        if (previous != address(0)) {
            uint256 best = _score(a, a.bestPrice, a.bestDelivery);
            if (score >= best) revert AuctionScoreNotBetter(auctionId, score, best);
        }
        uint256 previousBond = a.bestBond;
        a.bestProvider = msg.sender;
        a.bestPrice = uint96(price);
        a.bestBond = uint96(received);
        a.bestDelivery = uint32(deliverySeconds);
        emit OfferPlaced(auctionId, msg.sender, price, deliverySeconds, received, score);
        if (previous != address(0) && previousBond != 0) _credits[previous][asset] += previousBond;
    }

    /// @inheritdoc IProcurementAuction
    function commit(uint256 auctionId, bytes32 commitment, uint256 bond) external payable nonReentrant {
        Auction storage a = _auctions[auctionId];
        _checkBidding(auctionId, a, true);
        mapping(address => BidRecord) storage bids = _bids[auctionId];
        if (!bids[msg.sender].isEmpty()) revert AuctionAlreadyCommitted(auctionId, msg.sender);
        uint256 received = _receive(a.erc20 ? a.asset : address(0), bond);
        if (received > type(uint96).max) revert AuctionInvalidAmount(received);
        bids[msg.sender] = BidRecordLib.sealedOf(commitment, received);
        emit OfferCommitted(auctionId, msg.sender, commitment, received);
    }

    /// @inheritdoc IProcurementAuction
    function reveal(uint256 auctionId, uint256 price, uint256 deliverySeconds, bytes32 salt, uint256 bond) external {
        Auction storage a = _auctions[auctionId];
        if (!a.sealedBids) revert AuctionWrongMode(auctionId);
        if (block.timestamp <= a.bidEnd || block.timestamp > a.revealEnd) {
            revert AuctionRevealWindow(auctionId, a.bidEnd, a.revealEnd, block.timestamp);
        }
        BidRecord record = _bids[auctionId][msg.sender];
        if (record.isEmpty()) revert AuctionNoCommitment(auctionId, msg.sender);
        if (record.isRevealed()) revert AuctionAlreadyRevealed(auctionId, msg.sender);
        if (!record.matches(commitmentOf(msg.sender, auctionId, price, deliverySeconds, salt), bond)) {
            revert AuctionInvalidReveal(auctionId, msg.sender);
        }
        bool eligible = _valid(a, price, deliverySeconds, bond);
        uint256 score = eligible ? _score(a, price, deliverySeconds) : 0;
        if (eligible) {
            _bids[auctionId][msg.sender] = BidRecordLib.revealedOf((price << 32) | deliverySeconds, bond);
            if (a.bestProvider == address(0) || score < _score(a, a.bestPrice, a.bestDelivery)) {
                a.bestProvider = msg.sender;
                a.bestPrice = uint96(price);
                a.bestBond = uint96(bond);
                a.bestDelivery = uint32(deliverySeconds);
            }
        } else {
            _bids[auctionId][msg.sender] = BidRecordLib.revealedOf(0, bond);
        }
        emit OfferRevealed(auctionId, msg.sender, price, deliverySeconds, score, eligible);
    }

    /// @inheritdoc IProcurementAuction
    function settle(uint256 auctionId, DealTemplate calldata terms) external nonReentrant returns (uint256 dealId) {
        Auction storage a = _auctions[auctionId];
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        if (block.timestamp <= a.revealEnd) revert AuctionNotEnded(auctionId, a.revealEnd, block.timestamp);
        _checkTerms(auctionId, a.templateHash, terms);
        address winner = a.bestProvider;
        address buyer = terms.creator;
        uint256 budget = a.budget;
        if (winner != address(0)) {
            uint256 price = a.bestPrice;
            Deal memory deal = _sellDeal(terms, buyer, winner, price);
            deal.bond = a.bestBond;
            deal.promisedBy = uint40(block.timestamp + a.bestDelivery);
            deal.deliverBy = uint40(block.timestamp + a.bestDelivery + terms.deliveryDelay);
            _bindPromise(deal, a.priceWeight, a.timeWeight, price);
            // effects before the escrow call: the sale is settled unless the escrow refuses it (then NoSale below)
            a.status = AuctionStatus.Settled;
            if (_dealPossible(deal)) dealId = _tryOpenHeld(deal);
            if (dealId != 0) {
                emit AuctionSettled(auctionId, winner, price, dealId);
                // slither-disable-next-line reentrancy-benign -- prior call is the immutable escrow; guarded
                _payOut(terms.asset, buyer, budget - price);
                return dealId;
            }
            // void sale: the open-mode winner's bond is credited back (sealed winners reclaim it)
            if (!a.sealedBids) _creditHeld(winner, terms.asset, a.bestBond);
        }
        // slither-disable-next-line reentrancy-eth,reentrancy-no-eth -- reached after a call only when the immutable escrow refused the deal (settle is nonReentrant)
        a.status = AuctionStatus.NoSale;
        emit AuctionSettled(auctionId, address(0), 0, 0);
        _payOut(terms.asset, buyer, budget);
    }

    /// @inheritdoc IProcurementAuction
    function reclaim(uint256 auctionId, bytes32 commitment, uint256 bond)
        external
        nonReentrant
        returns (uint256 refund)
    {
        Auction storage a = _auctions[auctionId];
        BidRecord record = _bids[auctionId][msg.sender];
        if (record.isEmpty()) revert AuctionNoCommitment(auctionId, msg.sender);
        AuctionStatus status = a.status;
        uint256 penalty = 0; // stays 0 for a revealed bid
        if (record.isRevealed()) {
            refund = record.deposit();
            if (a.bestProvider == msg.sender) {
                if (status == AuctionStatus.Active) revert AuctionInvalidState(auctionId, status);
                if (status == AuctionStatus.Settled) refund = 0; // the bond now backs the escrow deal
            }
        } else {
            if (block.timestamp <= a.revealEnd) revert AuctionNotEnded(auctionId, a.revealEnd, block.timestamp);
            if (!record.matches(commitment, bond)) revert AuctionInvalidReveal(auctionId, msg.sender);
            penalty = (bond * a.penaltyBps) / BPS;
            refund = bond - penalty;
        }
        _bids[auctionId][msg.sender] = BidRecord.wrap(0); // cleared (storage refund)
        emit BondReclaimed(auctionId, msg.sender, refund, penalty);
        address asset = a.erc20 ? a.asset : address(0);
        _payOut(asset, a.buyer, penalty);
        _payOut(asset, msg.sender, refund);
    }

    /// @inheritdoc IProcurementAuction
    function scoreOf(uint256 auctionId, uint256 price, uint256 deliverySeconds) external view returns (uint256) {
        return _score(_auctions[auctionId], price, deliverySeconds);
    }

    /// @inheritdoc IProcurementAuction
    function commitmentOf(address provider, uint256 auctionId, uint256 price, uint256 deliverySeconds, bytes32 salt)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(provider, auctionId, block.chainid, address(this), price, deliverySeconds, salt));
    }

    /// @inheritdoc IProcurementAuction
    function getAuction(uint256 auctionId) external view returns (ProcurementView memory v) {
        Auction storage a = _auctions[auctionId];
        v.buyer = a.buyer;
        v.asset = a.asset;
        v.bestProvider = a.bestProvider;
        v.bestPrice = a.bestPrice;
        v.bestDelivery = a.bestDelivery;
        v.bestBond = a.bestBond;
        v.budget = a.budget;
        v.bidEnd = a.bidEnd;
        v.revealEnd = a.revealEnd;
        v.penaltyBps = a.penaltyBps;
        v.sealedBids = a.sealedBids;
        v.priceWeight = a.priceWeight;
        v.timeWeight = a.timeWeight;
        v.maxDelivery = a.maxDelivery;
        v.minBond = a.minBond;
        v.status = a.status;
        v.templateHash = a.templateHash;
    }

    /// @dev A delivery time that earned score must bind (DESIGN §6.12). Each second late past the promise
    /// costs the provider what that second was worth in the score, `timeWeight / priceWeight` asset units,
    /// so a provider that under-promises ends up paying the price its true delivery time would have scored
    /// (the buyer is made whole in its own weights), up to the whole price; past `deliverBy` the deal is
    /// refunded with the bond. The template's own rate and cap apply when they are stricter.
    function _bindPromise(Deal memory deal, uint256 priceWeight, uint256 timeWeight, uint256 price) private pure {
        if (timeWeight == 0) return;
        uint256 rate = MAX_RATE;
        if (priceWeight != 0) {
            uint256 den = priceWeight * price;
            uint256 num = timeWeight * 3600 * BPS;
            uint256 exact = (num + den - 1) / den; // round up: never less than the score the promise earned
            if (exact < rate) rate = exact;
        }
        if (rate > deal.penaltyBpsPerHour) deal.penaltyBpsPerHour = uint16(rate);
        deal.penaltyCapBps = uint16(BPS);
    }

    function _checkBidding(uint256 auctionId, Auction storage a, bool sealedBid) private view {
        if (a.status != AuctionStatus.Active) revert AuctionInvalidState(auctionId, a.status);
        if (a.sealedBids != sealedBid) revert AuctionWrongMode(auctionId);
        if (block.timestamp > a.bidEnd) revert AuctionBiddingClosed(auctionId, a.bidEnd, block.timestamp);
        if (msg.sender == a.buyer) revert AuctionUnauthorized(auctionId, msg.sender);
    }

    function _valid(Auction storage a, uint256 price, uint256 deliverySeconds, uint256 bond) private view returns (bool) {
        return price != 0 && price <= a.budget && deliverySeconds <= a.maxDelivery && bond >= a.minBond
            && bond <= type(uint96).max;
    }

    function _score(Auction storage a, uint256 price, uint256 deliverySeconds) private view returns (uint256) {
        return uint256(a.priceWeight) * price + uint256(a.timeWeight) * deliverySeconds;
    }
}

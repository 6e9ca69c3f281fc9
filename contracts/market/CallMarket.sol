// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {ICallMarket} from "../interfaces/ICallMarket.sol";
import {DealTemplate} from "../libraries/AuctionTypes.sol";
import {BatchParams, BatchStatus, BatchView} from "../libraries/CallTypes.sol";
import {UntotalledCredits} from "../libraries/Credits.sol";
import {Deal, DealLib} from "../libraries/EscrowTypes.sol";
import {Side} from "../libraries/OfferTypes.sol";

/// @title CallMarket
/// @notice See {ICallMarket}. A batch double auction that clears at one uniform price and settles every
/// matched pair into an `AgentEscrow` deal.
///
/// Why the clearer supplies only the price: the allocation of a uniform-price auction depends on each
/// order's price relative to p alone (strictly better: full fill; equal: rationed in id order; worse:
/// none), so verifying a proposed p needs no sorting. One pass over the orders in id order (which counts
/// every live order exactly once: completeness is structural, not a claim to check) yields D(p), D(p+1),
/// S(p), S(p-1) and the nearest prices on either side of p, from which the equilibrium conditions and the
/// price rule are checked in O(n). The pass is one transaction: a side holds at most `MAX_ORDERS` orders.
///
/// Money: an order holds its own lock (a bid price x tick x quantity, an ask bond x quantity), funded by
/// `msg.value` or, for what it does not cover, by the maker's credit (ERC-20: pulled). Whatever an order
/// does not spend in escrow deals returns to its maker's credit when the order is processed (settled,
/// cancelled, released), withdrawable at any time. Solvency: balance == credits + locks of live orders,
/// the books of each ERC-20 asset (see {Credits}); credits, withdrawals and books come from {Credits}.
///
/// Storage: one word per order (maker | price in ticks | quantity), one per account and asset (credit),
/// five per batch. Settlement deletes each order word as it is processed, so an order can never be
/// settled or released twice.
contract CallMarket is ICallMarket, UntotalledCredits {

    /// @inheritdoc ICallMarket
    uint256 public constant MAX_ORDERS = 1500;
    uint256 private constant BPS = 10_000;
    uint256 private constant TEMPLATE_SIZE = 13 * 32;
    uint256 private constant MAX_TICK_EXP = 30;
    uint256 private constant M24 = (1 << 24) - 1;
    uint256 private constant M32 = (1 << 32) - 1;
    uint256 private constant M64 = (1 << 64) - 1;
    uint256 private constant M128 = (1 << 128) - 1;
    uint256 private constant BID_COUNT_SHIFT = 200;
    uint256 private constant ASK_COUNT_SHIFT = 224;
    /// @dev A set bit no walk field uses: the walk word is non-zero from the clearing on.
    uint256 private constant WALK_STARTED = 1 << 255;

    /// @dev Packed batch words.
    ///   head:     asset (0..159) | closeTime (160..199) | bidCount (200..223) | askCount (224..247) | tickExp (248..255)
    ///   meta:     bond per unit (0..127) | settleBy (128..175) | status (176..183)
    ///   clearing: priceTicks (0..63) | volume (64..127) | bid tie budget (128..191) | ask tie budget (192..255)
    ///   walk:     bidCursor (0..23) | askCursor (24..47) | bidFill (48..79) | bidPaired (80..111) |
    ///             askFill (112..143) | askPaired (144..175) | bidReady (176) | askReady (177) | started (255)
    struct Batch {
        uint256 head;
        bytes32 termsHash;
        uint256 meta;
        uint256 clearing;
        uint256 walk;
    }

    /// @dev Settlement walk state, unpacked in memory for one call.
    struct Walk {
        uint256 bidCursor;
        uint256 askCursor;
        uint256 bidFill;
        uint256 bidPaired;
        uint256 askFill;
        uint256 askPaired;
        bool bidReady;
        bool askReady;
        uint256 bidWord;
        uint256 askWord;
    }

    /// @dev What the walk needs of the batch, read once per call.
    struct Ctx {
        uint256 batchId;
        address asset;
        uint256 tick;
        uint256 bond;
        uint256 priceTicks;
        uint256 bidTie;
        uint256 askTie;
        uint256 bidCount;
        uint256 askCount;
        address arbiter;
    }

    /// @dev Sums and nearest prices of one side at a proposed price p (arbiter orders left out).
    struct Agg {
        uint256 above; //    units priced > p
        uint256 at; //       units priced == p
        uint256 below; //    units priced < p
        uint256 minAbove; // lowest price > p (type(uint64).max when none)
        uint256 maxBelow; // highest price < p (0 when none)
    }

    /// @inheritdoc ICallMarket
    address public immutable escrow;
    /// @inheritdoc ICallMarket
    uint256 public nextBatchId = 1;

    mapping(uint256 batchId => Batch) private _batches;
    mapping(uint256 batchId => mapping(uint256 orderId => uint256)) private _bids;
    mapping(uint256 batchId => mapping(uint256 orderId => uint256)) private _asks;

    constructor(address escrow_) {
        if (escrow_.code.length == 0) revert CallInvalidEscrow(escrow_);
        escrow = escrow_;
    }

    // =============================================================================================
    // Batches and orders
    // =============================================================================================

    /// @inheritdoc ICallMarket
    function openBatch(DealTemplate calldata terms, BatchParams calldata params) external returns (uint256 batchId) {
        if (terms.creator != msg.sender) revert CallInvalidParams(0);
        if (terms.deliveryDelay == 0 || terms.promiseDelay > terms.deliveryDelay) revert CallInvalidParams(1);
        if (terms.penaltyCapBps > BPS || terms.arbiterFeeBps > BPS || terms.defaultSellerBps > BPS) {
            revert CallInvalidParams(2);
        }
        // slither-disable-next-line timestamp -- the window must not already be over; seconds of skew are harmless
        if (params.closeTime < block.timestamp) revert CallInvalidParams(3);
        if (params.settleWindow == 0) revert CallInvalidParams(4);
        if (params.tickExp > MAX_TICK_EXP) revert CallInvalidParams(5);
        // a batch is a new sale: none starts once the escrow's owner has delisted this market (point 11)
        if (!IAgentEscrow(escrow).isListed(address(this))) revert CallMarketNotListed(escrow);
        batchId = nextBatchId++;
        Batch storage b = _batches[batchId];
        b.head = uint256(uint160(terms.asset)) | (uint256(params.closeTime) << 160) | (uint256(params.tickExp) << 248);
        b.termsHash = hashTemplate(terms);
        uint256 settleBy = uint256(params.closeTime) + params.settleWindow;
        b.meta = uint256(terms.bond) | (settleBy << 128) | (uint256(BatchStatus.Open) << 176);
        emit BatchOpened(batchId, msg.sender, terms.termsHash, terms, params);
    }

    /// @inheritdoc ICallMarket
    function submitBid(uint256 batchId, uint64 priceTicks, uint32 quantity)
        external
        payable
        nonReentrant
        returns (uint256 orderId)
    {
        Batch storage b = _batches[batchId];
        uint256 head = b.head;
        _requireOpen(batchId, head);
        if (priceTicks == 0 || quantity == 0) revert CallInvalidOrder(priceTicks, quantity);
        uint256 lock = uint256(priceTicks) * _tick(head) * quantity; // < 2^64 * 10^30 * 2^32: no overflow
        if (lock > M128) revert CallInvalidOrder(priceTicks, quantity);
        orderId = (head >> BID_COUNT_SHIFT) & M24;
        if (orderId >= MAX_ORDERS) revert CallBatchFull(batchId, Side.Buy);
        b.head = head + (1 << BID_COUNT_SHIFT);
        _bids[batchId][orderId] = uint256(uint160(msg.sender)) | (uint256(priceTicks) << 160) | (uint256(quantity) << 224);
        _fund(msg.sender, address(uint160(head)), lock);
        emit OrderPlaced(batchId, msg.sender, Side.Buy, orderId, priceTicks, quantity);
    }

    /// @inheritdoc ICallMarket
    function submitAsk(uint256 batchId, uint64 priceTicks, uint32 quantity)
        external
        payable
        nonReentrant
        returns (uint256 orderId)
    {
        Batch storage b = _batches[batchId];
        uint256 head = b.head;
        _requireOpen(batchId, head);
        if (priceTicks == 0 || quantity == 0) revert CallInvalidOrder(priceTicks, quantity);
        // the price must be payable by some bid: a bid at this price has to fit 128 bits too
        if (uint256(priceTicks) * _tick(head) * quantity > M128) revert CallInvalidOrder(priceTicks, quantity);
        uint256 lock = (b.meta & M128) * quantity;
        if (lock > M128) revert CallInvalidOrder(priceTicks, quantity);
        orderId = (head >> ASK_COUNT_SHIFT) & M24;
        if (orderId >= MAX_ORDERS) revert CallBatchFull(batchId, Side.Sell);
        b.head = head + (1 << ASK_COUNT_SHIFT);
        _asks[batchId][orderId] = uint256(uint160(msg.sender)) | (uint256(priceTicks) << 160) | (uint256(quantity) << 224);
        _fund(msg.sender, address(uint160(head)), lock);
        emit OrderPlaced(batchId, msg.sender, Side.Sell, orderId, priceTicks, quantity);
    }

    /// @inheritdoc ICallMarket
    function cancel(uint256 batchId, Side side, uint256 orderId) external nonReentrant {
        Batch storage b = _batches[batchId];
        uint256 head = b.head;
        _requireOpen(batchId, head);
        mapping(uint256 => uint256) storage orders = side == Side.Buy ? _bids[batchId] : _asks[batchId];
        uint256 word = orders[orderId];
        if (word == 0) revert CallOrderNotFound(batchId, side, orderId);
        if (address(uint160(word)) != msg.sender) revert CallNotMaker(batchId, orderId, msg.sender);
        delete orders[orderId];
        uint256 perUnit = side == Side.Buy ? ((word >> 160) & M64) * _tick(head) : b.meta & M128;
        _addCredit(msg.sender, address(uint160(head)), perUnit * (word >> 224));
        emit OrderCancelled(batchId, side, orderId);
    }

    function _requireOpen(uint256 batchId, uint256 head) private view {
        if (head == 0) revert CallBatchNotFound(batchId);
        uint256 closeTime = (head >> 160) & ((1 << 40) - 1);
        // slither-disable-next-line timestamp -- order window by design; block-time skew is only seconds
        if (block.timestamp > closeTime) revert CallWindowClosed(batchId, closeTime, block.timestamp);
    }

    function _tick(uint256 head) private pure returns (uint256) {
        return 10 ** (head >> 248);
    }

    // =============================================================================================
    // Clearing
    // =============================================================================================

    /// @inheritdoc ICallMarket
    function clear(uint256 batchId, DealTemplate calldata terms, uint64 priceTicks)
        external
        nonReentrant
        returns (uint256 volume)
    {
        Batch storage b = _batches[batchId];
        (uint256 head, uint256 meta) = _closedBatch(batchId, b, BatchStatus.Open);
        if (hashTemplate(terms) != b.termsHash) revert CallTermsMismatch(batchId);
        uint256 p = priceTicks;
        Agg memory bids = _aggregate(_bids[batchId], (head >> BID_COUNT_SHIFT) & M24, p, terms.arbiter);
        Agg memory asks = _aggregate(_asks[batchId], (head >> ASK_COUNT_SHIFT) & M24, p, terms.arbiter);
        uint256 demand = bids.above + bids.at;
        uint256 supply = asks.below + asks.at;
        volume = demand < supply ? demand : supply;
        if (bids.above > volume || asks.below > volume) {
            revert CallNotEquilibrium(batchId, priceTicks, demand, supply, bids.above, asks.below);
        }
        if (volume != 0) {
            uint256 expected = _rulePrice(p, volume, bids, asks);
            if (p != expected) revert CallPriceRule(batchId, priceTicks, uint64(expected));
        }
        b.clearing = p | (volume << 64) | ((volume - bids.above) << 128) | ((volume - asks.below) << 192);
        b.walk = WALK_STARTED; // created here, with the batch's other words, rather than by the first settle
        b.meta = (meta & ~(uint256(0xff) << 176)) | (uint256(BatchStatus.Cleared) << 176);
        emit BatchCleared(batchId, msg.sender, priceTicks, p * _tick(head), volume);
    }

    /// @dev The midpoint of the equilibrium interval [max(a_V, b_(V+1)), min(b_V, a_(V+1))], from the sums
    /// and nearest prices around the proposed price p (which is an equilibrium with volume V > 0).
    function _rulePrice(uint256 p, uint256 volume, Agg memory bids, Agg memory asks) private pure returns (uint256) {
        // V-th highest bid unit: p if bids at p trade, else the lowest bid above p
        uint256 bV = bids.above < volume ? p : bids.minAbove;
        // (V+1)-th highest bid unit: p if a bid unit at p is left out, else the highest bid below p
        uint256 bNext = bids.above + bids.at > volume ? p : bids.maxBelow;
        uint256 aV = asks.below < volume ? p : asks.maxBelow;
        uint256 aNext = asks.below + asks.at > volume ? p : asks.minAbove;
        uint256 lo = aV > bNext ? aV : bNext;
        uint256 hi = bV < aNext ? bV : aNext;
        return (lo + hi) / 2;
    }

    /// @dev One pass over a side's orders in id order: sums and nearest prices around p.
    function _aggregate(mapping(uint256 => uint256) storage orders, uint256 count, uint256 p, address arbiter)
        private
        view
        returns (Agg memory agg)
    {
        agg.minAbove = M64;
        uint256 above = 0;
        uint256 at = 0;
        uint256 below = 0;
        uint256 minAbove = M64;
        uint256 maxBelow = 0;
        for (uint256 i; i < count; ++i) {
            uint256 word = orders[i];
            if (word == 0 || address(uint160(word)) == arbiter) continue; // cancelled, or void
            uint256 price = (word >> 160) & M64;
            uint256 qty = word >> 224;
            unchecked {
                // at most 2^24 orders of 2^32 units: sums stay below 2^56
                if (price > p) {
                    above += qty;
                    if (price < minAbove) minAbove = price;
                } else if (price == p) {
                    at += qty;
                } else {
                    below += qty;
                    if (price > maxBelow) maxBelow = price;
                }
            }
        }
        (agg.above, agg.at, agg.below, agg.minAbove, agg.maxBelow) = (above, at, below, minAbove, maxBelow);
    }

    /// @dev head and meta of a batch whose window is over, that is in `expected` status and whose
    /// settlement deadline has not passed.
    function _closedBatch(uint256 batchId, Batch storage b, BatchStatus expected)
        private
        view
        returns (uint256 head, uint256 meta)
    {
        head = b.head;
        if (head == 0) revert CallBatchNotFound(batchId);
        meta = b.meta;
        BatchStatus status = BatchStatus(uint8(meta >> 176));
        if (status != expected) revert CallInvalidState(batchId, status);
        uint256 closeTime = (head >> 160) & ((1 << 40) - 1);
        // slither-disable-next-line timestamp -- window and deadline checks by design
        if (block.timestamp <= closeTime) revert CallWindowOpen(batchId, closeTime, block.timestamp);
        uint256 settleBy = (meta >> 128) & ((1 << 48) - 1);
        // slither-disable-next-line timestamp -- window and deadline checks by design
        if (block.timestamp > settleBy) revert CallDeadlinePassed(batchId, settleBy, block.timestamp);
    }

    // =============================================================================================
    // Settlement
    // =============================================================================================

    /// @inheritdoc ICallMarket
    // slither-disable-next-line reentrancy-eth,reentrancy-no-eth -- the only external call is the immutable escrow's openFor; nonReentrant; a chunked walk must write its progress after the deals it opened
    function settle(uint256 batchId, DealTemplate calldata terms, uint256 maxSteps)
        external
        nonReentrant
        returns (uint256 steps, bool done)
    {
        Batch storage b = _batches[batchId];
        (uint256 head, uint256 meta) = _closedBatch(batchId, b, BatchStatus.Cleared);
        if (hashTemplate(terms) != b.termsHash) revert CallTermsMismatch(batchId);
        uint256 clearing = b.clearing;
        Ctx memory c = Ctx({
            batchId: batchId,
            asset: address(uint160(head)),
            tick: _tick(head),
            bond: meta & M128,
            priceTicks: clearing & M64,
            bidTie: (clearing >> 128) & M64,
            askTie: clearing >> 192,
            bidCount: (head >> BID_COUNT_SHIFT) & M24,
            askCount: (head >> ASK_COUNT_SHIFT) & M24,
            arbiter: terms.arbiter
        });
        Walk memory w = _unpackWalk(b.walk);
        // an order left half-paired by the previous chunk: its word is still in storage (nothing deletes a
        // live order before the deadline), the walk word keeps only its fill and paired units
        if (w.bidReady) w.bidWord = _bids[batchId][w.bidCursor];
        if (w.askReady) w.askWord = _asks[batchId][w.askCursor];
        Deal memory deal = _dealOf(terms);
        while (steps < maxSteps) {
            if (!w.bidReady && w.bidCursor < c.bidCount) {
                steps += _loadBid(c, w);
                continue;
            }
            if (!w.askReady && w.askCursor < c.askCount) {
                steps += _loadAsk(c, w);
                continue;
            }
            if (w.bidReady && w.askReady) {
                _trade(c, w, deal);
                ++steps;
                continue;
            }
            // fills sum to the volume on both sides, so when neither side can load a filled order, both
            // sides are exhausted
            done = true;
            break;
        }
        if (!done && !w.bidReady && !w.askReady && w.bidCursor == c.bidCount && w.askCursor == c.askCount) {
            done = true;
        }
        b.walk = _packWalk(w);
        b.clearing = (clearing & ((1 << 128) - 1)) | (c.bidTie << 128) | (c.askTie << 192);
        if (done) {
            b.meta = (meta & ~(uint256(0xff) << 176)) | (uint256(BatchStatus.Done) << 176);
            emit BatchDone(batchId, false);
        }
    }

    /// @dev Load the bid at the cursor: compute its fill (ties at p in id order), or finish it at once when
    /// it is unfilled (release its lock, delete it). Returns the steps taken (0 when it is now ready).
    function _loadBid(Ctx memory c, Walk memory w) private returns (uint256) {
        uint256 id = w.bidCursor;
        uint256 word = _bids[c.batchId][id];
        if (word == 0) {
            w.bidCursor = id + 1; // cancelled
            return 1;
        }
        uint256 price = (word >> 160) & M64;
        uint256 qty = word >> 224;
        uint256 fill = 0;
        if (address(uint160(word)) != c.arbiter) {
            if (price > c.priceTicks) {
                fill = qty;
            } else if (price == c.priceTicks) {
                fill = qty < c.bidTie ? qty : c.bidTie;
                c.bidTie -= fill;
            }
        }
        if (fill == 0) {
            delete _bids[c.batchId][id];
            _addCredit(address(uint160(word)), c.asset, price * c.tick * qty);
            w.bidCursor = id + 1;
            return 1;
        }
        (w.bidReady, w.bidFill, w.bidPaired, w.bidWord) = (true, fill, 0, word);
        return 0;
    }

    /// @dev As {_loadBid}, for the ask at the cursor (its lock is the bond).
    function _loadAsk(Ctx memory c, Walk memory w) private returns (uint256) {
        uint256 id = w.askCursor;
        uint256 word = _asks[c.batchId][id];
        if (word == 0) {
            w.askCursor = id + 1;
            return 1;
        }
        uint256 price = (word >> 160) & M64;
        uint256 qty = word >> 224;
        uint256 fill = 0;
        if (address(uint160(word)) != c.arbiter) {
            if (price < c.priceTicks) {
                fill = qty;
            } else if (price == c.priceTicks) {
                fill = qty < c.askTie ? qty : c.askTie;
                c.askTie -= fill;
            }
        }
        if (fill == 0) {
            delete _asks[c.batchId][id];
            _addCredit(address(uint160(word)), c.asset, c.bond * qty);
            w.askCursor = id + 1;
            return 1;
        }
        (w.askReady, w.askFill, w.askPaired, w.askWord) = (true, fill, 0, word);
        return 0;
    }

    /// @dev One pairing of the walk.
    struct Pair {
        uint256 bidId;
        uint256 askId;
        address buyer;
        address seller;
        uint256 quantity;
        uint256 bidUnlock;
        uint256 askUnlock;
    }

    /// @dev Pair the current bid and ask for as many units as both still have, open the escrow deal, and
    /// finish whichever order is now complete.
    function _trade(Ctx memory c, Walk memory w, Deal memory deal) private {
        Pair memory t = _pair(c, w);
        uint256 dealId = 0; // stays 0 for a self-pair: no deal
        if (t.buyer == t.seller) {
            // A maker's bid paired with its own ask: nothing to trade; both locks return untouched.
            _addCredit(t.buyer, c.asset, t.bidUnlock + t.askUnlock);
        } else {
            uint256 amount = c.priceTicks * c.tick * t.quantity;
            uint256 bond = c.bond * t.quantity;
            // the bid's lock of these units minus the price paid (and of its untraded units, when finished)
            _addCredit(t.buyer, c.asset, t.bidUnlock - amount);
            _addCredit(t.seller, c.asset, t.askUnlock - bond);
            dealId = _open(deal, t.buyer, t.seller, amount, bond);
        }
        // slither-disable-next-line reentrancy-events -- needs the dealId openFor returns; the escrow is immutable
        emit TradeSettled(c.batchId, dealId, t.bidId, t.askId, t.quantity);
    }

    /// @dev The bookkeeping of one pairing: units, locks to release, orders finished (deleted, cursor on).
    function _pair(Ctx memory c, Walk memory w) private returns (Pair memory t) {
        uint256 bidLeft = w.bidFill - w.bidPaired;
        uint256 askLeft = w.askFill - w.askPaired;
        uint256 q = bidLeft < askLeft ? bidLeft : askLeft;
        (t.bidId, t.askId, t.quantity) = (w.bidCursor, w.askCursor, q);
        (t.buyer, t.seller) = (address(uint160(w.bidWord)), address(uint160(w.askWord)));
        uint256 bidUnitLock = ((w.bidWord >> 160) & M64) * c.tick;
        t.bidUnlock = bidUnitLock * q;
        t.askUnlock = c.bond * q;
        w.bidPaired += q;
        w.askPaired += q;
        // a finished order also releases the lock of its units that did not trade
        if (w.bidPaired == w.bidFill) {
            t.bidUnlock += bidUnitLock * ((w.bidWord >> 224) - w.bidFill);
            delete _bids[c.batchId][t.bidId];
            (w.bidReady, w.bidCursor, w.bidPaired) = (false, t.bidId + 1, 0);
        }
        if (w.askPaired == w.askFill) {
            t.askUnlock += c.bond * ((w.askWord >> 224) - w.askFill);
            delete _asks[c.batchId][t.askId];
            (w.askReady, w.askCursor, w.askPaired) = (false, t.askId + 1, 0);
        }
    }

    /// @dev Open the escrow deal of one pair, funded with the price and the bond this contract holds.
    function _open(Deal memory deal, address buyer, address seller, uint256 amount, uint256 bond)
        private
        returns (uint256)
    {
        deal.buyer = buyer;
        deal.seller = seller;
        deal.amount = uint128(amount); // <= the bid's lock, checked to fit 128 bits at submission
        deal.bond = uint128(bond); // <= the ask's lock, likewise
        address asset = deal.asset;
        if (asset == address(0)) {
            // slither-disable-next-line arbitrary-send-eth,calls-loop -- the immutable escrow; one deal per matched pair by design
            return IAgentEscrow(escrow).openFor{value: amount + bond}(deal, true);
        }
        // off the books; in deficit its share leaves and the escrow splits what arrived pro rata, in surplus the
        // deal grows to the share that left (Review 2)
        uint256 sent = _sendOut(asset, escrow, amount + bond);
        if (sent > amount + bond) DealLib.grow(deal, sent, amount + bond);
        // slither-disable-next-line calls-loop -- the immutable escrow; one deal per matched pair by design
        return IAgentEscrow(escrow).openFor(deal, true);
    }

    /// @dev The deal fields shared by every pair of a batch: the template's terms, deadlines from now.
    function _dealOf(DealTemplate calldata t) private view returns (Deal memory deal) {
        deal.arbiter = t.arbiter;
        deal.asset = t.asset;
        deal.termsHash = t.termsHash;
        deal.promisedBy = uint40(block.timestamp + t.promiseDelay);
        deal.deliverBy = uint40(block.timestamp + t.deliveryDelay);
        deal.reviewWindow = t.reviewWindow;
        deal.rulingWindow = t.rulingWindow;
        deal.penaltyBpsPerHour = t.penaltyBpsPerHour;
        deal.penaltyCapBps = t.penaltyCapBps;
        deal.arbiterFeeBps = t.arbiterFeeBps;
        deal.defaultSellerBps = t.defaultSellerBps;
    }

    function _unpackWalk(uint256 word) private pure returns (Walk memory w) {
        w.bidCursor = word & M24;
        w.askCursor = (word >> 24) & M24;
        w.bidFill = (word >> 48) & M32;
        w.bidPaired = (word >> 80) & M32;
        w.askFill = (word >> 112) & M32;
        w.askPaired = (word >> 144) & M32;
        w.bidReady = (word >> 176) & 1 == 1;
        w.askReady = (word >> 177) & 1 == 1;
    }

    function _packWalk(Walk memory w) private pure returns (uint256) {
        return WALK_STARTED | w.bidCursor | (w.askCursor << 24) | (w.bidFill << 48) | (w.bidPaired << 80) | (w.askFill << 112)
            | (w.askPaired << 144) | (w.bidReady ? 1 << 176 : 0) | (w.askReady ? 1 << 177 : 0);
    }

    // =============================================================================================
    // Expiry: every locked coin's exit
    // =============================================================================================

    /// @inheritdoc ICallMarket
    function release(uint256 batchId, uint256 maxOrders) external nonReentrant returns (uint256 released, bool done) {
        Batch storage b = _batches[batchId];
        (uint256 head, uint256 meta) = _expiredBatch(batchId, b);
        Walk memory w = _unpackWalk(b.walk);
        uint256 bidCount = (head >> BID_COUNT_SHIFT) & M24;
        uint256 askCount = (head >> ASK_COUNT_SHIFT) & M24;
        while (released < maxOrders && w.bidCursor < bidCount) {
            _releaseOrder(batchId, Side.Buy, w.bidCursor, head, meta, w.bidReady ? w.bidPaired : 0);
            (w.bidCursor, w.bidReady, w.bidPaired) = (w.bidCursor + 1, false, 0);
            ++released;
        }
        while (released < maxOrders && w.askCursor < askCount) {
            _releaseOrder(batchId, Side.Sell, w.askCursor, head, meta, w.askReady ? w.askPaired : 0);
            (w.askCursor, w.askReady, w.askPaired) = (w.askCursor + 1, false, 0);
            ++released;
        }
        b.walk = _packWalk(w);
        done = w.bidCursor == bidCount && w.askCursor == askCount;
        if (done) {
            b.meta = (meta & ~(uint256(0xff) << 176)) | (uint256(BatchStatus.Done) << 176);
            emit BatchDone(batchId, true);
        }
    }

    /// @inheritdoc ICallMarket
    function reclaim(uint256 batchId, Side side, uint256 orderId) external nonReentrant {
        Batch storage b = _batches[batchId];
        (uint256 head, uint256 meta) = _expiredBatch(batchId, b);
        uint256 walk = b.walk;
        // the walk's current order may have traded some units already; those locks are released
        uint256 paired = 0;
        if (side == Side.Buy && orderId == (walk & M24) && (walk >> 176) & 1 == 1) paired = (walk >> 80) & M32;
        if (side == Side.Sell && orderId == ((walk >> 24) & M24) && (walk >> 177) & 1 == 1) {
            paired = (walk >> 144) & M32;
        }
        if (!_releaseOrder(batchId, side, orderId, head, meta, paired)) {
            revert CallOrderNotFound(batchId, side, orderId);
        }
        emit OrderReclaimed(batchId, side, orderId);
    }

    /// @dev Release the lock of the units of an order that did not trade (`paired` did) and delete it.
    /// Returns false when there is no such order (cancelled or already processed).
    function _releaseOrder(uint256 batchId, Side side, uint256 orderId, uint256 head, uint256 meta, uint256 paired)
        private
        returns (bool)
    {
        mapping(uint256 => uint256) storage orders = side == Side.Buy ? _bids[batchId] : _asks[batchId];
        uint256 word = orders[orderId];
        if (word == 0) return false;
        delete orders[orderId];
        uint256 perUnit = side == Side.Buy ? ((word >> 160) & M64) * _tick(head) : meta & M128;
        uint256 unlock = perUnit * ((word >> 224) - paired);
        _addCredit(address(uint160(word)), address(uint160(head)), unlock);
        return true;
    }

    /// @dev head and meta of a batch past its settlement deadline that is not done yet.
    function _expiredBatch(uint256 batchId, Batch storage b) private view returns (uint256 head, uint256 meta) {
        head = b.head;
        if (head == 0) revert CallBatchNotFound(batchId);
        meta = b.meta;
        BatchStatus status = BatchStatus(uint8(meta >> 176));
        if (status == BatchStatus.Done) revert CallInvalidState(batchId, status);
        uint256 settleBy = (meta >> 128) & ((1 << 48) - 1);
        // slither-disable-next-line timestamp -- deadline check by design
        if (block.timestamp <= settleBy) revert CallDeadlineNotReached(batchId, settleBy, block.timestamp);
    }

    // =============================================================================================
    // Accounts
    // =============================================================================================

    /// @inheritdoc ICallMarket
    function deposit(address asset, uint256 amount) external payable nonReentrant {
        if (asset == address(0)) {
            if (msg.value == 0) revert CallWrongValue(1, 0);
            amount = msg.value;
        } else {
            if (msg.value != 0) revert CallWrongValue(0, msg.value);
            amount = _pull(asset, amount);
        }
        _addCredit(msg.sender, asset, amount);
        emit Deposited(msg.sender, asset, amount);
    }

    /// @dev Fund an order's lock of `amount`: ETH from `msg.value`, any excess credited, any shortfall taken
    /// from the maker's credit; ERC-20 from the credit, the rest pulled (what actually arrives counts).
    function _fund(address account, address asset, uint256 amount) private {
        uint256 credit = _credits[account][asset];
        if (asset == address(0)) {
            uint256 value = msg.value;
            if (value == amount) return; // the common case: the order brings exactly its lock
            if (value > amount) {
                _credits[account][asset] = credit + (value - amount);
                return;
            }
            uint256 shortfall = amount - value;
            if (shortfall > credit) revert CallInsufficientFunds(account, asset, credit + value, amount);
            unchecked {
                _credits[account][asset] = credit - shortfall;
            }
            return;
        }
        if (msg.value != 0) revert CallWrongValue(0, msg.value);
        if (amount == 0) return;
        if (credit < amount) {
            uint256 received = _pull(asset, amount - credit);
            // a fee-on-transfer token delivers less than asked: the order is not covered
            if (credit + received < amount) revert CallInsufficientFunds(account, asset, credit + received, amount);
            credit += received;
        }
        _credits[account][asset] = credit - amount;
    }

    /// @dev Move `amount` (skipped when zero) of a lock to `account`'s credit in `asset` (it stays on the books;
    /// no event: the order events say it).
    function _addCredit(address account, address asset, uint256 amount) private {
        if (amount != 0) _credits[account][asset] += amount;
    }

    /// @dev Pull `amount` of the ERC-20 `asset` from the caller (every funder is `msg.sender`) and book it;
    /// returns what actually arrived (fee-on-transfer tokens). Refused in deficit (see {Credits-_pullBooked}).
    function _pull(address asset, uint256 amount) private returns (uint256) {
        return _pullBooked(asset, amount);
    }

    // =============================================================================================
    // Views
    // =============================================================================================

    /// @inheritdoc ICallMarket
    function orderOf(uint256 batchId, Side side, uint256 orderId)
        external
        view
        returns (address maker, uint64 priceTicks, uint32 quantity)
    {
        uint256 word = side == Side.Buy ? _bids[batchId][orderId] : _asks[batchId][orderId];
        return (address(uint160(word)), uint64(word >> 160), uint32(word >> 224));
    }

    /// @inheritdoc ICallMarket
    function batchInfo(uint256 batchId)
        external
        view
        returns (BatchView memory info)
    {
        Batch storage b = _batches[batchId];
        uint256 head = b.head;
        uint256 meta = b.meta;
        uint256 clearing = b.clearing;
        info.asset = address(uint160(head));
        info.closeTime = (head >> 160) & ((1 << 40) - 1);
        info.settleBy = (meta >> 128) & ((1 << 48) - 1);
        info.tick = head == 0 ? 0 : _tick(head);
        info.bond = meta & M128;
        info.bidCount = (head >> BID_COUNT_SHIFT) & M24;
        info.askCount = (head >> ASK_COUNT_SHIFT) & M24;
        info.status = BatchStatus(uint8(meta >> 176));
        info.priceTicks = clearing & M64;
        info.volume = (clearing >> 64) & M64;
    }

    /// @inheritdoc ICallMarket
    function progressOf(uint256 batchId)
        external
        view
        returns (uint256 bidCursor, uint256 askCursor, uint256 bidPaired, uint256 askPaired)
    {
        Walk memory w = _unpackWalk(_batches[batchId].walk);
        return (w.bidCursor, w.askCursor, w.bidPaired, w.askPaired);
    }

    /// @inheritdoc ICallMarket
    function hashTemplate(DealTemplate calldata terms) public pure returns (bytes32 h) {
        // slither-disable-next-line assembly -- hashes the 13 static calldata words in place, as abi.encode would
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, terms, TEMPLATE_SIZE)
            h := keccak256(p, TEMPLATE_SIZE)
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {Asset, AssetLib} from "../libraries/Asset.sol";
import {Credits} from "../libraries/Credits.sol";
import {AssetTotals, Deal, DealLib, DealSlot, DealState, TotalsLib} from "../libraries/EscrowTypes.sol";

/// @title AgentEscrow
/// @notice See {IAgentEscrow}. One storage word per deal (terms hash + state, see {DealLib}); the terms
/// travel in calldata. Payouts are pushed (ETH with a fixed gas allowance) and fall back to withdrawable
/// credits, so no receiver can block a settlement. Per-asset totals make solvency checkable from views.
///
/// Default ruling: when the arbiter misses its ruling deadline the split written in the terms
/// (`defaultSellerBps`) applies. The Python client defaults it to 10,000 (the seller's delivery stands):
/// the seller has performed on chain (a deliverable hash before the deadline), only the buyer can open a
/// dispute, and a buyer-favouring default would turn "dispute, then an arbiter that never answers" into a
/// free refund of a delivered service. Buyers that want the opposite write a lower value into the terms.
contract AgentEscrow is IAgentEscrow, Ownable2Step, Credits {
    using SafeERC20 for IERC20;

    /// @notice Largest protocol fee: 5%.
    uint256 public constant MAX_FEE_BPS = 500;
    /// @notice Delay before a market admission or delisting takes effect once any deal exists (users see
    /// every change to the set of markets coming; before the first deal the set is configured at once).
    uint256 public constant MARKET_DELAY = 2 days;
    uint256 private constant BPS = 10_000;

    /// @inheritdoc IAgentEscrow
    uint256 public immutable feeBps;
    /// @inheritdoc IAgentEscrow
    address public immutable feeRecipient;

    /// @inheritdoc IAgentEscrow
    uint256 public nextDealId = 1;

    mapping(uint256 dealId => DealSlot) private _deals;
    /// @dev Owed (locked + credits) and owed-fee totals of one asset in one word (touched together on
    /// settlement, and read whole by the deficit check of every ERC-20 pull).
    mapping(address asset => AssetTotals) private _totals;
    /// @dev What the seller of a deal was paid by early releases (net of fees): part of its rating weight.
    mapping(uint256 dealId => uint256) private _released;
    mapping(address market => MarketRecord) private _markets;
    /// @dev The terms a keyed deal was opened with, kept by its first release (which rewrites the stored hash):
    /// an OfferBook fill links to them (`openedWith`), so a 1-wei release cannot void the next fill's proof.
    mapping(uint256 dealId => bytes32) private _openedHash;

    /// @dev `admittedAt`: from then on the market may open deals (0: never admitted); `delistedAt`: from then
    /// on it is no longer listed for new sales (0: not delisted). Deals of sales it started stay possible.
    struct MarketRecord {
        uint40 admittedAt;
        uint40 delistedAt;
    }

    constructor(address initialOwner, address feeRecipient_, uint256 feeBps_) Ownable(initialOwner) {
        if (feeBps_ > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (feeBps_ != 0 && feeRecipient_ == address(0)) revert EscrowZeroFeeRecipient();
        feeBps = feeBps_;
        feeRecipient = feeRecipient_;
    }

    // =============================================================================================
    // Opening deals
    // =============================================================================================

    /// @inheritdoc IAgentEscrow
    function create(Deal calldata deal) external payable nonReentrant returns (uint256 dealId) {
        if (deal.buyer != msg.sender) revert EscrowUnauthorized(0, msg.sender);
        _validate(deal);
        DealState state = deal.bond == 0 ? DealState.Funded : DealState.AwaitingBond;
        address asset = deal.asset;
        if (asset == address(0)) {
            if (msg.value != deal.amount) revert EscrowWrongValue(deal.amount, msg.value);
            return _open(0, deal, deal.amount, state);
        }
        if (msg.value != 0) revert EscrowWrongValue(0, msg.value);
        // One read of the asset's totals serves the deficit check of the pull and the lock (no entry point
        // can change them in between: all are nonReentrant).
        (uint256 slot, AssetTotals word) = _totalsOf(asset);
        uint256 received = Asset.wrap(asset).pullMeasured(msg.sender, deal.amount, word.locked() + word.fees());
        if (received == deal.amount) return _openAt(deal, received, state, slot, word);
        if (received == 0) revert EscrowZeroAmount();
        Deal memory adjusted = deal;
        adjusted.amount = _toUint128(received);
        return _openAdjusted(0, adjusted, received, state);
    }

    /// @inheritdoc IAgentEscrow
    function openFor(Deal calldata deal, bool bondPosted) external payable nonReentrant returns (uint256 dealId) {
        return _openFor(0, deal, bondPosted);
    }

    /// @inheritdoc IAgentEscrow
    function openForKey(bytes32 key, Deal calldata deal, bool bondPosted)
        external
        payable
        nonReentrant
        returns (uint256 dealId)
    {
        dealId = DealLib.keyedId(msg.sender, key);
        // A key opens one deal, ever (deal words are never cleared): the market's once-only guarantee.
        if (!_deals[dealId].isEmpty()) revert EscrowDealExists(dealId);
        return _openFor(dealId, deal, bondPosted);
    }

    /// @dev openFor under `dealId` (0: the next sequential id).
    function _openFor(uint256 dealId, Deal calldata deal, bool bondPosted) private returns (uint256) {
        MarketRecord memory market = _markets[msg.sender];
        uint256 admittedAt = market.admittedAt;
        // slither-disable-next-line incorrect-equality -- 0 is "never admitted", a sentinel, not a balance
        if (admittedAt == 0 || block.timestamp < admittedAt) revert EscrowNotMarket(msg.sender);
        // A keyed deal is always a new sale (an OfferBook fill: nothing pending to complete), so a market whose
        // delisting took effect opens none; sequential openFor stays open to finish sales started while listed.
        if (dealId != 0) {
            uint256 delistedAt = market.delistedAt;
            if (delistedAt != 0 && block.timestamp >= delistedAt) revert EscrowMarketDelisted(msg.sender);
        }
        _validate(deal);
        uint256 bond = deal.bond;
        uint256 expected = uint256(deal.amount) + (bondPosted ? bond : 0);
        DealState state = (bond == 0 || bondPosted) ? DealState.Funded : DealState.AwaitingBond;
        address asset = deal.asset;
        if (asset == address(0)) {
            if (msg.value != expected) revert EscrowWrongValue(expected, msg.value);
            return _open(dealId, deal, expected, state);
        }
        if (msg.value != 0) revert EscrowWrongValue(0, msg.value);
        (uint256 received, AssetTotals word) = _receiveFromMarket(asset, expected);
        // slither-disable-next-line incorrect-equality -- token amounts measured by balance difference, not balances
        if (received == expected) {
            // the totals word read by _receiveFromMarket is still current (nonReentrant: no token callback
            // can have moved it), so it is written back without a second read
            if (dealId == 0) dealId = nextDealId++;
            _deals[dealId] = DealLib.pack(DealLib.hashCalldata(deal), state, 0);
            _lockKnown(asset, word, expected);
            _emitCreated(dealId, deal, state);
            return dealId;
        }
        // slither-disable-next-line incorrect-equality -- exactly nothing arrived: no deal to open
        if (received == 0) revert EscrowZeroAmount();
        // Fee-on-transfer: both legs lost the same share in transit; split what arrived pro rata.
        Deal memory adjusted = deal;
        uint256 amount = (received * deal.amount) / expected;
        // slither-disable-next-line incorrect-equality -- the pro-rata amount rounded to exactly zero
        if (amount == 0) revert EscrowZeroAmount();
        adjusted.amount = _toUint128(amount);
        if (bondPosted) adjusted.bond = _toUint128(received - amount);
        return _openAdjusted(dealId, adjusted, received, state);
    }

    /// @dev Store and announce a deal under `dealId` (0: the next sequential id).
    function _open(uint256 dealId, Deal calldata deal, uint256 lockedValue, DealState state)
        private
        returns (uint256)
    {
        if (dealId == 0) dealId = nextDealId++;
        _deals[dealId] = DealLib.pack(DealLib.hashCalldata(deal), state, 0);
        _lock(deal.asset, lockedValue);
        _emitCreated(dealId, deal, state);
        return dealId;
    }

    /// @dev `emit DealCreated(dealId, deal.buyer, deal.seller, deal, state, msg.sender)` from the calldata
    /// words as they are (the ABI encoder would re-check every field: ~1k gas a deal). Every field was read,
    /// so checked for dirty bits, by {_validate} and the caller, except the two windows and the penalty rate
    /// (read there only when promisedBy is 0): checked here.
    function _emitCreated(uint256 dealId, Deal calldata deal, DealState state) private {
        bytes32 topic = DealCreated.selector;
        assembly ("memory-safe") {
            // reviewWindow, rulingWindow (uint32, words 9 and 10), penaltyBpsPerHour (uint16, word 11)
            if or(
                or(shr(32, calldataload(add(deal, 0x120))), shr(32, calldataload(add(deal, 0x140)))),
                shr(16, calldataload(add(deal, 0x160)))
            ) { revert(0, 0) }
            let p := mload(0x40)
            calldatacopy(p, deal, 0x1e0)
            mstore(add(p, 0x1e0), state)
            mstore(add(p, 0x200), caller())
            log4(p, 0x220, topic, dealId, calldataload(deal), calldataload(add(deal, 0x20)))
        }
    }

    /// @dev `_open` with the asset's totals already read (`slot`, `word`: see `_totalsOf`). A copy rather than
    /// a layer under `_open`: one more internal call costs the ETH and market paths ~95 gas.
    function _openAt(Deal calldata deal, uint256 lockedValue, DealState state, uint256 slot, AssetTotals word)
        private
        returns (uint256 dealId)
    {
        dealId = nextDealId++;
        _deals[dealId] = DealLib.pack(DealLib.hashCalldata(deal), state, 0);
        _lockAt(slot, word, lockedValue);
        _emitCreated(dealId, deal, state);
    }

    function _openAdjusted(uint256 dealId, Deal memory deal, uint256 lockedValue, DealState state)
        private
        returns (uint256)
    {
        if (dealId == 0) dealId = nextDealId++;
        _deals[dealId] = DealLib.pack(DealLib.hashMemory(deal), state, 0);
        _lock(deal.asset, lockedValue);
        emit DealCreated(dealId, deal.buyer, deal.seller, deal, state, msg.sender);
        return dealId;
    }

    function _validate(Deal calldata deal) private view {
        if (deal.amount == 0) revert EscrowZeroAmount();
        address buyer = deal.buyer;
        address seller = deal.seller;
        address arbiter = deal.arbiter;
        if (
            buyer == address(0) || seller == address(0) || buyer == seller
                || (arbiter != address(0) && (arbiter == buyer || arbiter == seller))
        ) revert EscrowInvalidParties(buyer, seller, arbiter);
        uint256 promisedBy = deal.promisedBy;
        uint256 deliverBy = deal.deliverBy;
        if (deliverBy <= block.timestamp || promisedBy > deliverBy || (promisedBy == 0 && deal.penaltyBpsPerHour != 0)) {
            revert EscrowInvalidDeadlines(promisedBy, deliverBy, block.timestamp);
        }
        if (deal.penaltyCapBps > BPS) revert EscrowInvalidBps(deal.penaltyCapBps);
        if (deal.arbiterFeeBps > BPS) revert EscrowInvalidBps(deal.arbiterFeeBps);
        if (deal.defaultSellerBps > BPS) revert EscrowInvalidBps(deal.defaultSellerBps);
    }

    // =============================================================================================
    // Seller side
    // =============================================================================================

    /// @inheritdoc IAgentEscrow
    function postBond(uint256 dealId, Deal calldata deal) external payable nonReentrant {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.AwaitingBond);
        if (msg.sender != deal.seller) revert EscrowUnauthorized(dealId, msg.sender);
        if (block.timestamp > deal.deliverBy) revert EscrowDeadlinePassed(dealId, deal.deliverBy, block.timestamp);
        address asset = deal.asset;
        uint256 received;
        if (asset == address(0)) {
            if (msg.value != deal.bond) revert EscrowWrongValue(deal.bond, msg.value);
            received = msg.value;
        } else {
            if (msg.value != 0) revert EscrowWrongValue(0, msg.value);
            received = Asset.wrap(asset).pullMeasured(msg.sender, deal.bond, _owed(asset));
        }
        bytes32 h;
        // slither-disable-next-line incorrect-equality -- token amounts measured by balance difference, not balances
        if (received == deal.bond) {
            h = DealLib.hashCalldata(deal);
        } else {
            Deal memory adjusted = deal;
            adjusted.bond = _toUint128(received);
            h = DealLib.hashMemory(adjusted);
        }
        _deals[dealId] = packed.withBondPosted(h);
        _lock(asset, received);
        emit BondPosted(dealId, received);
    }

    /// @inheritdoc IAgentEscrow
    function submit(uint256 dealId, Deal calldata deal, bytes32 deliverableHash) external {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.Funded);
        if (msg.sender != deal.seller) revert EscrowUnauthorized(dealId, msg.sender);
        if (block.timestamp > deal.deliverBy) revert EscrowDeadlinePassed(dealId, deal.deliverBy, block.timestamp);
        _deals[dealId] = packed.withSubmission(block.timestamp);
        emit DeliverableSubmitted(dealId, deliverableHash, block.timestamp);
    }

    // =============================================================================================
    // Settlement
    // =============================================================================================

    /// @inheritdoc IAgentEscrow
    function accept(uint256 dealId, Deal calldata deal) external nonReentrant {
        _settle(dealId, deal, true, true);
    }

    /// @inheritdoc IAgentEscrow
    function finalize(uint256 dealId, Deal calldata deal) external nonReentrant {
        _settle(dealId, deal, false, true);
    }

    /// @inheritdoc IAgentEscrow
    function acceptMany(uint256[] calldata dealIds, Deal[] calldata deals)
        external
        nonReentrant
        returns (uint256 settled)
    {
        if (dealIds.length != deals.length) revert EscrowLengthMismatch(dealIds.length, deals.length);
        for (uint256 i; i < dealIds.length; ++i) {
            if (_settle(dealIds[i], deals[i], true, false)) ++settled;
        }
    }

    /// @inheritdoc IAgentEscrow
    function finalizeMany(uint256[] calldata dealIds, Deal[] calldata deals)
        external
        nonReentrant
        returns (uint256 settled)
    {
        if (dealIds.length != deals.length) revert EscrowLengthMismatch(dealIds.length, deals.length);
        for (uint256 i; i < dealIds.length; ++i) {
            if (_settle(dealIds[i], deals[i], false, false)) ++settled;
        }
    }

    /// @dev accept (byBuyer) or finalize one deal. `strict`: revert on a failed check; otherwise emit
    /// `DealSkipped` and return false (batches).
    function _settle(uint256 dealId, Deal calldata deal, bool byBuyer, bool strict) private returns (bool) {
        DealSlot packed = _deals[dealId];
        if (strict) {
            // the single-deal path reverts straight away (cheaper than building the error bytes)
            // slither-disable-next-line incorrect-equality -- exact zero test of the deal word (no deal), not a balance
            if (packed.isEmpty()) revert EscrowDealNotFound(dealId);
            if (!packed.matches(DealLib.hashCalldata(deal))) revert EscrowTermsMismatch(dealId);
            DealState state = packed.state();
            if (state != DealState.Submitted) revert EscrowInvalidState(dealId, state);
            if (byBuyer) {
                if (msg.sender != deal.buyer) revert EscrowUnauthorized(dealId, msg.sender);
            } else {
                uint256 reviewEnd = packed.submittedAt() + deal.reviewWindow;
                if (block.timestamp <= reviewEnd) revert EscrowDeadlineNotReached(dealId, reviewEnd, block.timestamp);
            }
        } else {
            bytes memory failure = _checkSettle(dealId, deal, packed, byBuyer);
            if (failure.length != 0) {
                emit DealSkipped(dealId, failure);
                return false;
            }
        }
        _deals[dealId] = packed.withState(byBuyer ? DealState.Accepted : DealState.Finalized);
        uint256 amount = deal.amount;
        uint256 bond = deal.bond;
        uint256 penalty = DealLib.latePenalty(deal, packed.submittedAt());
        uint256 gross = amount - penalty;
        uint256 fee = DealLib.feeOn(gross, feeBps);
        uint256 toSeller = gross - fee + bond;
        address asset = deal.asset;
        _unlock(asset, amount + bond, fee);
        if (byBuyer) emit DealAccepted(dealId, toSeller, penalty);
        else emit DealFinalized(dealId, msg.sender, toSeller, penalty);
        _pay(asset, deal.seller, toSeller);
        _pay(asset, deal.buyer, penalty);
        return true;
    }

    function _checkSettle(uint256 dealId, Deal calldata deal, DealSlot packed, bool byBuyer)
        private
        view
        returns (bytes memory)
    {
        // slither-disable-next-line incorrect-equality -- exact zero test of the deal word (no deal), not a balance
        if (packed.isEmpty()) return abi.encodeWithSelector(EscrowDealNotFound.selector, dealId);
        if (!packed.matches(DealLib.hashCalldata(deal))) {
            return abi.encodeWithSelector(EscrowTermsMismatch.selector, dealId);
        }
        DealState state = packed.state();
        if (state != DealState.Submitted) return abi.encodeWithSelector(EscrowInvalidState.selector, dealId, state);
        if (byBuyer) {
            if (msg.sender != deal.buyer) return abi.encodeWithSelector(EscrowUnauthorized.selector, dealId, msg.sender);
        } else {
            uint256 reviewEnd = packed.submittedAt() + deal.reviewWindow;
            if (block.timestamp <= reviewEnd) {
                return abi.encodeWithSelector(EscrowDeadlineNotReached.selector, dealId, reviewEnd, block.timestamp);
            }
        }
        return "";
    }

    /// @inheritdoc IAgentEscrow
    function release(uint256 dealId, Deal calldata deal, uint256 amount) external nonReentrant {
        DealSlot packed = _load(dealId, deal);
        DealState state = packed.state();
        // slither-disable-next-line incorrect-equality -- exact test of the packed deal state, not a balance
        if (state == DealState.None || state > DealState.Disputed) revert EscrowInvalidState(dealId, state);
        if (msg.sender != deal.buyer) revert EscrowUnauthorized(dealId, msg.sender);
        if (amount == 0 || amount > deal.amount) revert EscrowInvalidRelease(dealId, amount, deal.amount);
        // the first release of a keyed deal keeps the opened terms (the releaser pays that write)
        if (dealId & DealLib.KEYED != 0 && !packed.hasReleases()) _openedHash[dealId] = DealLib.hashCalldata(deal);
        Deal memory adjusted = deal;
        uint256 remaining = deal.amount - amount;
        adjusted.amount = _toUint128(remaining);
        _deals[dealId] = packed.withRelease(DealLib.hashMemory(adjusted));
        uint256 fee = DealLib.feeOn(amount, feeBps);
        _released[dealId] += amount - fee;
        _unlock(deal.asset, amount, fee);
        emit FundsReleased(dealId, amount, fee, remaining);
        _pay(deal.asset, deal.seller, amount - fee);
    }

    /// @inheritdoc IAgentEscrow
    function dispute(uint256 dealId, Deal calldata deal) external {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.Submitted);
        if (msg.sender != deal.buyer) revert EscrowUnauthorized(dealId, msg.sender);
        if (deal.arbiter == address(0)) revert EscrowNoArbiter(dealId);
        uint256 reviewEnd = packed.submittedAt() + deal.reviewWindow;
        if (block.timestamp > reviewEnd) revert EscrowDeadlinePassed(dealId, reviewEnd, block.timestamp);
        _deals[dealId] = packed.withState(DealState.Disputed);
        emit DealDisputed(dealId);
    }

    /// @inheritdoc IAgentEscrow
    function reject(uint256 dealId, Deal calldata deal) external nonReentrant {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.Submitted);
        if (msg.sender != deal.buyer) revert EscrowUnauthorized(dealId, msg.sender);
        if (deal.arbiter != address(0)) revert EscrowHasArbiter(dealId, deal.arbiter);
        uint256 reviewEnd = packed.submittedAt() + deal.reviewWindow;
        if (block.timestamp > reviewEnd) revert EscrowDeadlinePassed(dealId, reviewEnd, block.timestamp);
        _deals[dealId] = packed.withState(DealState.Rejected);
        uint256 toBuyer = uint256(deal.amount) + deal.bond;
        address asset = deal.asset;
        _unlock(asset, toBuyer, 0);
        emit DealRejected(dealId, toBuyer);
        _pay(asset, deal.buyer, toBuyer);
    }

    /// @inheritdoc IAgentEscrow
    function resolve(uint256 dealId, Deal calldata deal, uint256 sellerBps, uint256 bondSellerBps)
        external
        nonReentrant
    {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.Disputed);
        if (msg.sender != deal.arbiter) revert EscrowUnauthorized(dealId, msg.sender);
        uint256 rulingEnd = packed.submittedAt() + deal.reviewWindow + deal.rulingWindow;
        if (block.timestamp > rulingEnd) revert EscrowDeadlinePassed(dealId, rulingEnd, block.timestamp);
        if (sellerBps > BPS) revert EscrowInvalidBps(sellerBps);
        if (bondSellerBps > BPS) revert EscrowInvalidBps(bondSellerBps);
        _deals[dealId] = packed.withRuling(DealState.Resolved, sellerBps);
        (uint256 toSeller, uint256 toBuyer, uint256 toArbiter, uint256 fee) =
            _ruling(deal, sellerBps, bondSellerBps);
        _unlock(deal.asset, uint256(deal.amount) + deal.bond, fee);
        emit DisputeResolved(dealId, sellerBps, bondSellerBps, toSeller, toBuyer, toArbiter, fee);
        _pay(deal.asset, deal.seller, toSeller);
        _pay(deal.asset, deal.buyer, toBuyer);
        _pay(deal.asset, deal.arbiter, toArbiter);
    }

    /// @dev Payouts of an arbiter ruling: its fee first, then the split of the rest and of the bond. The
    /// protocol fee is charged on every payment for service: the seller's share AND the arbiter's fee (an
    /// arbiter fee of up to 100% would otherwise move a whole deal fee-free).
    function _ruling(Deal calldata deal, uint256 sellerBps, uint256 bondSellerBps)
        private
        view
        returns (uint256 toSeller, uint256 toBuyer, uint256 toArbiter, uint256 fee)
    {
        uint256 amount = deal.amount;
        uint256 bond = deal.bond;
        uint256 arbiterGross = (amount * deal.arbiterFeeBps) / BPS;
        uint256 rest = amount - arbiterGross;
        uint256 sellerGross = _rulingShare(deal, sellerBps);
        uint256 bondToSeller = (bond * bondSellerBps) / BPS;
        uint256 sellerFee = DealLib.feeOn(sellerGross, feeBps);
        uint256 arbiterFee = DealLib.feeOn(arbiterGross, feeBps);
        fee = sellerFee + arbiterFee;
        toArbiter = arbiterGross - arbiterFee;
        toSeller = sellerGross - sellerFee + bondToSeller;
        toBuyer = rest - sellerGross + bond - bondToSeller;
    }

    /// @dev The seller's gross share of the price under an arbiter ruling of `sellerBps` (after its fee).
    function _rulingShare(Deal calldata deal, uint256 sellerBps) private pure returns (uint256) {
        uint256 amount = deal.amount;
        uint256 rest = amount - (amount * deal.arbiterFeeBps) / BPS;
        // slither-disable-next-line divide-before-multiply -- rest is the amount after the arbiter's rounded fee
        return (rest * sellerBps) / BPS;
    }

    /// @dev The seller's gross share of the price under the terms' default split (late penalty first).
    function _defaultShare(Deal calldata deal, DealSlot packed) private pure returns (uint256) {
        uint256 penalty = DealLib.latePenalty(deal, packed.submittedAt());
        return ((deal.amount - penalty) * deal.defaultSellerBps) / BPS;
    }

    /// @inheritdoc IAgentEscrow
    function settleDefault(uint256 dealId, Deal calldata deal) external nonReentrant {
        DealSlot packed = _load(dealId, deal);
        _requireState(dealId, packed, DealState.Disputed);
        uint256 rulingEnd = packed.submittedAt() + deal.reviewWindow + deal.rulingWindow;
        if (block.timestamp <= rulingEnd) revert EscrowDeadlineNotReached(dealId, rulingEnd, block.timestamp);
        _deals[dealId] = packed.withState(DealState.Resolved);
        uint256 amount = deal.amount;
        uint256 bond = deal.bond;
        uint256 split = deal.defaultSellerBps;
        uint256 sellerGross = _defaultShare(deal, packed);
        uint256 bondToSeller = (bond * split) / BPS;
        uint256 fee = DealLib.feeOn(sellerGross, feeBps);
        uint256 toSeller = sellerGross - fee + bondToSeller;
        uint256 toBuyer = amount - sellerGross + bond - bondToSeller;
        address asset = deal.asset;
        _unlock(asset, amount + bond, fee);
        emit DisputeDefaulted(dealId, msg.sender, toSeller, toBuyer, fee);
        _pay(asset, deal.seller, toSeller);
        _pay(asset, deal.buyer, toBuyer);
    }

    /// @inheritdoc IAgentEscrow
    function refund(uint256 dealId, Deal calldata deal) external nonReentrant {
        DealSlot packed = _load(dealId, deal);
        DealState state = packed.state();
        if (state != DealState.Funded && state != DealState.AwaitingBond) revert EscrowInvalidState(dealId, state);
        if (block.timestamp <= deal.deliverBy) {
            revert EscrowDeadlineNotReached(dealId, deal.deliverBy, block.timestamp);
        }
        _deals[dealId] = packed.withState(DealState.Refunded);
        // slither-disable-next-line incorrect-equality -- exact test of the packed deal state, not a balance
        uint256 toBuyer = uint256(deal.amount) + (state == DealState.Funded ? deal.bond : 0);
        address asset = deal.asset;
        _unlock(asset, toBuyer, 0);
        emit DealRefunded(dealId, msg.sender, toBuyer);
        _pay(asset, deal.buyer, toBuyer);
    }

    /// @inheritdoc IAgentEscrow
    function cancel(uint256 dealId, Deal calldata deal) external nonReentrant {
        DealSlot packed = _load(dealId, deal);
        DealState state = packed.state();
        if (state != DealState.Funded && state != DealState.AwaitingBond) revert EscrowInvalidState(dealId, state);
        bool byBuyer = msg.sender == deal.buyer;
        if (!byBuyer && msg.sender != deal.seller) revert EscrowUnauthorized(dealId, msg.sender);
        // slither-disable-next-line incorrect-equality -- exact test of the packed deal state, not a balance
        if (state == DealState.Funded && !(byBuyer ? packed.sellerCancelled() : packed.buyerCancelled())) {
            _deals[dealId] = packed.withCancelRequest(byBuyer);
            emit CancelRequested(dealId, msg.sender);
            return;
        }
        // The cancelling call records no request flag of its own: the flags keep only the requests announced
        // by CancelRequested, so the view equals what a client rebuilds from events (DESIGN §6.10).
        _deals[dealId] = packed.withState(DealState.Cancelled);
        uint256 amount = deal.amount;
        // slither-disable-next-line incorrect-equality -- exact test of the packed deal state, not a balance
        uint256 bond = state == DealState.Funded ? deal.bond : 0;
        address asset = deal.asset;
        _unlock(asset, amount + bond, 0);
        emit DealCancelled(dealId, amount, bond);
        _pay(asset, deal.buyer, amount);
        _pay(asset, deal.seller, bond);
    }

    // =============================================================================================
    // Credits and fees
    // =============================================================================================

    /// @inheritdoc IAgentEscrow
    function collectFees(address asset) external nonReentrant returns (uint256) {
        return _collectFees(asset, feeRecipient);
    }

    /// @inheritdoc IAgentEscrow
    function collectFeesTo(address asset, address to) external nonReentrant returns (uint256) {
        if (msg.sender != feeRecipient) revert EscrowUnauthorized(0, msg.sender);
        return _collectFees(asset, to);
    }

    function _collectFees(address asset, address to) private returns (uint256 amount) {
        AssetTotals t = _totals[asset];
        amount = t.fees();
        // slither-disable-next-line incorrect-equality -- exactly no fees owed, read from the books
        if (amount == 0) revert CreditsNothingToWithdraw(feeRecipient, asset);
        _totals[asset] = t.clearFees();
        emit FeesCollected(asset, to, amount);
        uint256 out = amount;
        if (asset != address(0)) {
            // off balance (a rebase) the fees take the same share as every other claim (see {Credits-_withdraw})
            uint256 owed = t.locked() + amount;
            uint256 held = Asset.wrap(asset).selfBalance();
            if (held != owed) out = amount * held / owed;
        }
        uint256 sent = _send(asset, to, out);
        // A sender-tax token: the fees paid their own tax; what did not leave is the recipient's credit.
        if (sent < out) _credit(feeRecipient, asset, out - sent);
    }

    /// @inheritdoc IAgentEscrow
    function setMarket(address market, bool allowed) external onlyOwner {
        // Before the first deal nobody is exposed: the deployer configures the set at once. Afterwards every
        // change is announced MARKET_DELAY ahead (MarketSet carries the time it takes effect).
        uint256 effectiveAt = nextDealId == 1 ? block.timestamp : block.timestamp + MARKET_DELAY;
        MarketRecord memory r = _markets[market];
        if (allowed) {
            if (r.admittedAt == 0) r.admittedAt = uint40(effectiveAt);
            else if (r.admittedAt <= block.timestamp) effectiveAt = r.admittedAt; // already admitted: relist now
            r.delistedAt = 0;
        } else if (r.admittedAt == 0 || r.admittedAt > block.timestamp) {
            // an admission that has not taken effect is withdrawn at once (nothing can depend on it yet)
            r.admittedAt = 0;
            effectiveAt = block.timestamp;
        } else if (r.delistedAt == 0) {
            r.delistedAt = uint40(effectiveAt);
        } else {
            effectiveAt = r.delistedAt;
        }
        _markets[market] = r;
        emit MarketSet(market, allowed, effectiveAt);
    }

    /// @inheritdoc IAgentEscrow
    function isMarket(address market) external view returns (bool) {
        uint256 admittedAt = _markets[market].admittedAt;
        return admittedAt != 0 && admittedAt <= block.timestamp;
    }

    /// @inheritdoc IAgentEscrow
    function isListed(address market) external view returns (bool) {
        MarketRecord memory r = _markets[market];
        // slither-disable-next-line incorrect-equality -- zero is the "not delisted" sentinel, not a balance
        return r.admittedAt != 0 && r.admittedAt <= block.timestamp && (r.delistedAt == 0 || block.timestamp < r.delistedAt);
    }

    /// @inheritdoc IAgentEscrow
    function marketSchedule(address market) external view returns (uint256 admittedAt, uint256 delistedAt) {
        MarketRecord memory r = _markets[market];
        return (r.admittedAt, r.delistedAt);
    }

    // =============================================================================================
    // Views
    // =============================================================================================

    /// @inheritdoc IAgentEscrow
    function dealStatus(uint256 dealId)
        external
        view
        returns (DealState state, uint256 submittedAt, bool buyerCancelled, bool sellerCancelled)
    {
        DealSlot packed = _deals[dealId];
        return (
            packed.state(),
            packed.submittedAt(),
            packed.buyerCancelled(),
            packed.sellerCancelled()
        );
    }

    /// @inheritdoc IAgentEscrow
    function verifyTerms(uint256 dealId, Deal calldata deal) external view returns (bool) {
        DealSlot packed = _deals[dealId];
        return !packed.isEmpty() && packed.matches(DealLib.hashCalldata(deal));
    }

    /// @inheritdoc IAgentEscrow
    function openedWith(uint256 dealId, Deal calldata deal) external view returns (bool) {
        DealSlot packed = _deals[dealId];
        if (packed.isEmpty()) return false;
        bytes32 h = DealLib.hashCalldata(deal);
        return packed.matches(h) || (packed.hasReleases() && _openedHash[dealId] == h);
    }

    /// @inheritdoc IAgentEscrow
    function hashDeal(Deal calldata deal) external pure returns (bytes32) {
        return DealLib.hashCalldata(deal);
    }

    /// @inheritdoc IAgentEscrow
    function latePenalty(Deal calldata deal, uint256 submittedAt) external pure returns (uint256) {
        return DealLib.latePenalty(deal, submittedAt);
    }

    /// @inheritdoc IAgentEscrow
    function totals(address asset) external view returns (uint256 locked, uint256 credits, uint256 fees) {
        AssetTotals t = _totals[asset];
        uint256 credited = _creditTotals[asset];
        return (t.locked() - credited, credited, t.fees());
    }

    /// @inheritdoc IAgentEscrow
    function settlement(uint256 dealId, Deal calldata deal) external view returns (DealState state, uint256 paid) {
        DealSlot packed = _deals[dealId];
        if (packed.isEmpty() || !packed.matches(DealLib.hashCalldata(deal))) return (DealState.None, 0);
        state = packed.state();
        uint256 gross = 0; // not settled to the seller (Rejected, Refunded, Cancelled, or still open)
        // slither-disable-next-line incorrect-equality -- exact tests of the deal state enum
        if (state == DealState.Accepted || state == DealState.Finalized) {
            gross = uint256(deal.amount) - DealLib.latePenalty(deal, packed.submittedAt());
            // slither-disable-next-line incorrect-equality -- exact test of the deal state enum
        } else if (state == DealState.Resolved) {
            (bool ruled, uint256 sellerBps) = packed.ruling();
            gross = ruled ? _rulingShare(deal, sellerBps) : _defaultShare(deal, packed);
        }
        paid = gross - DealLib.feeOn(gross, feeBps);
        if (packed.hasReleases()) paid += _released[dealId];
    }


    // =============================================================================================
    // Internals
    // =============================================================================================

    /// @dev The stored word of `dealId`, after checking that `deal` is its current terms.
    function _load(uint256 dealId, Deal calldata deal) private view returns (DealSlot packed) {
        packed = _deals[dealId];
        // slither-disable-next-line incorrect-equality -- exact zero test of the deal word (no deal)
        if (packed.isEmpty()) revert EscrowDealNotFound(dealId);
        if (!packed.matches(DealLib.hashCalldata(deal))) revert EscrowTermsMismatch(dealId);
    }

    function _requireState(uint256 dealId, DealSlot packed, DealState expected) private pure {
        DealState state = packed.state();
        if (state != expected) revert EscrowInvalidState(dealId, state);
    }

    /// @dev `value` as a deal field; reverts rather than truncate (a token can credit more than was asked).
    function _toUint128(uint256 value) private pure returns (uint128) {
        if (value > type(uint128).max) revert EscrowAccountingOverflow();
        return uint128(value);
    }

    /// @dev See {Credits-_owed}: the books of `asset` are locked (credits included) and fees, in one word
    /// (see {AssetTotals}), for ETH as well (the totals view).
    function _owed(address asset) internal view override returns (uint256) {
        AssetTotals word = _totals[asset];
        return word.locked() + word.fees();
    }

    /// @dev A credit stays owed: it is booked in the locked total of its asset (see {AssetTotals}), so the
    /// deficit check of a pull reads one word, not two.
    function _book(address asset, uint256 value) internal override {
        _totals[asset] = _totals[asset].addLocked(value); // no carry: credits come out of the owed total
    }

    /// @dev A withdrawn credit leaves the locked total (see `_book`).
    function _unbook(address asset, uint256 value) internal override {
        _totals[asset] = _totals[asset].unlock(value, 0);
    }

    /// @dev Add `value` to the locked total of `asset` (see {AssetTotals}).
    function _lock(address asset, uint256 value) private {
        (uint256 slot, AssetTotals word) = _totalsOf(asset);
        // The locked total is 160 bits wide, a deal at most 128: no single deal can fill it (issue 12, point 10).
        if (word.locked() + value > TotalsLib.MAX_LOCKED) revert EscrowAccountingOverflow();
        word = word.addLocked(value); // locked + value < 2^160: no carry into the fees
        assembly ("memory-safe") {
            sstore(slot, word)
        }
    }

    /// @dev The storage slot of `_totals[asset]` and its word (the slot computed once for the read and the
    /// write of `_lockAt`).
    function _totalsOf(address asset) private view returns (uint256 slot, AssetTotals word) {
        assembly ("memory-safe") {
            mstore(0x00, asset)
            mstore(0x20, _totals.slot)
            slot := keccak256(0x00, 0x40)
            word := sload(slot)
        }
    }

    /// @dev `_lock` of the totals `word` read from `slot`.
    function _lockAt(uint256 slot, AssetTotals word, uint256 value) private {
        // The locked total is 160 bits wide, a deal at most 128: no single deal can fill it (issue 12, point 10).
        if (word.locked() + value > TotalsLib.MAX_LOCKED) revert EscrowAccountingOverflow();
        word = word.addLocked(value); // locked + value < 2^160: no carry into the fees
        assembly ("memory-safe") {
            sstore(slot, word)
        }
    }

    /// @dev {_lock} of a totals word already read in this call (no second read).
    function _lockKnown(address asset, AssetTotals word, uint256 value) private {
        if (word.locked() + value > TotalsLib.MAX_LOCKED) revert EscrowAccountingOverflow();
        _totals[asset] = word.addLocked(value);
    }

    /// @dev Move `value` out of the locked total of `asset`, `fee` of it into owed fees (one read, one write).
    /// The check follows the write so that the read and the write share one slot computation; the rare
    /// branch (fees beyond 96 bits, only in huge-supply tokens) rewrites it and credits the fee instead, so a
    /// full fee counter never blocks a settlement.
    function _unlock(address asset, uint256 value, uint256 fee) private {
        AssetTotals word = _totals[asset];
        _totals[asset] = word.unlock(value, fee);
        if (value > word.locked() || word.fees() + fee > TotalsLib.MAX_FEES) _unlockSlow(asset, word, value, fee);
        // the payouts that follow share what the escrow holds (`_share`): note what they take off the books
        if (asset != address(0)) {
            unchecked {
                _notePending(asset, value - fee); // fee <= value: a fee is a part of what it is taken from
            }
        }
    }

    function _unlockSlow(address asset, AssetTotals word, uint256 value, uint256 fee) private {
        // value <= locked always holds (every unlocked coin was locked before), but check anyway
        if (value > word.locked()) revert EscrowAccountingOverflow();
        _totals[asset] = word.unlock(value, 0);
        _credit(feeRecipient, asset, fee);
    }

    /// @dev Market funding: count tokens already sent to the escrow beyond its books, pull the shortfall
    /// from the market, and return what arrived (at most `expected`; any surplus stays unaccounted) with the
    /// asset's totals word it read. Refuses an asset whose balance is below its books.
    function _receiveFromMarket(address asset, uint256 expected)
        private
        returns (uint256 received, AssetTotals word)
    {
        word = _totals[asset];
        uint256 accounted = word.locked() + word.fees(); // credits are booked in locked (tokens)
        uint256 balance = Asset.wrap(asset).selfBalance();
        // Books above the balance: the token took coins from the escrow (negative rebase). That deficit
        // belongs to the positions already held; counting "balance minus books" would charge it to this new
        // deal instead, so the asset takes no new market deals (issue 12, point 6; `create` checks the same).
        if (balance < accounted) revert AssetLib.AssetDeficit(asset, balance, accounted);
        received = balance - accounted;
        if (received < expected) {
            uint256 shortfall = expected - received;
            // Pull the shortfall from a market that approved it. A market that pre-transferred a fee-on-transfer
            // token sent all it had to and approved nothing: what arrived is split pro rata instead of reverting
            // (a revert here locked English-auction bids forever, and made such tokens unfillable by offers).
            // slither-disable-next-line incorrect-equality -- token amount: zero means nothing was pre-transferred
            if (received == 0 || IERC20(asset).allowance(msg.sender, address(this)) >= shortfall) {
                IERC20(asset).safeTransferFrom(msg.sender, address(this), shortfall);
                balance = Asset.wrap(asset).selfBalance();
                received = balance > accounted ? balance - accounted : 0;
            }
        }
        if (received > expected) received = expected;
    }
}

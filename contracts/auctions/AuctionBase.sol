// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {IAuctionBase} from "../interfaces/IAuctionBase.sol";
import {DealTemplate} from "../libraries/AuctionTypes.sol";
import {UntotalledCredits} from "../libraries/Credits.sol";
import {Deal, DealLib} from "../libraries/EscrowTypes.sol";

/// @title AuctionBase
/// @notice Shared machinery of the auction singletons: template hashing and validation, receiving bids in
/// ETH or ERC-20 (the amount actually received counts), and opening the escrow deal a sale settles into.
/// Payouts, credits, withdrawals and the per-asset books come from {Credits} (without credit totals: no
/// auction has an on-chain solvency view, and a totals word would cost every outbid, which credits the
/// displaced bidder directly in `_credits`, a second storage write: +5k gas warm, over the 60k bid budget);
/// every payout of a held claim is `_payOut` (off the books, its share while they are off).
abstract contract AuctionBase is IAuctionBase, UntotalledCredits {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant TEMPLATE_SIZE = 13 * 32;

    /// @inheritdoc IAuctionBase
    address public immutable escrow;

    /// @inheritdoc IAuctionBase
    uint256 public nextAuctionId = 1;

    constructor(address escrow_) {
        escrow = escrow_;
    }

    // =============================================================================================
    // Templates
    // =============================================================================================

    /// @inheritdoc IAuctionBase
    function hashTemplate(DealTemplate calldata terms) public pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, terms, TEMPLATE_SIZE)
            h := keccak256(p, TEMPLATE_SIZE)
        }
    }

    /// @dev Reject templates the escrow would refuse at settlement, so a sale can never be stuck on them.
    function _validateTerms(DealTemplate calldata t) internal view {
        if (
            t.creator != msg.sender || t.deliveryDelay == 0 || t.promiseDelay > t.deliveryDelay || t.penaltyCapBps > BPS
                || t.arbiterFeeBps > BPS || t.defaultSellerBps > BPS || t.arbiter == msg.sender
        ) revert AuctionInvalidTerms();
        // every create starts a new sale: none once the escrow's owner has delisted this contract (point 11)
        if (!IAgentEscrow(escrow).isListed(address(this))) revert AuctionNotListed(escrow);
    }

    /// @dev A sell-side sale (English, Dutch, sealed) must bind both sides once it clears (DESIGN §6.12): the
    /// seller posts `t.bond` now (it backs the escrow deal from the moment of settlement, and a seller that
    /// never delivers loses it to the buyer through the escrow's refund), and an arbiter decides disputes,
    /// so the winner can neither be paid for junk nor walk away from a delivered sale on its own word.
    /// The bond is at most `minPrice`, the lowest price the sale can clear at: the escrow splits what arrives
    /// of a fee-on-transfer token pro rata between price and bond, and a bond above the price could round the
    /// price to zero there and make the sale impossible to settle. Returns the bond that actually arrived.
    function _takeSellerBond(DealTemplate calldata t, uint256 minPrice) internal returns (uint96) {
        if (t.bond == 0 || t.arbiter == address(0)) revert AuctionUnprotectedSale(t.bond, t.arbiter);
        if (t.bond > minPrice) revert AuctionBondAbovePrice(t.bond, minPrice);
        return _toUint96(_receive(t.asset, t.bond));
    }

    function _checkTerms(uint256 auctionId, bytes32 stored, DealTemplate calldata t) internal pure {
        if (hashTemplate(t) != stored) revert AuctionTermsMismatch(auctionId);
    }

    /// @dev The escrow deal a sell-side sale opens: the template's terms, deadlines from now.
    function _sellDeal(DealTemplate calldata t, address buyer, address seller, uint256 amount)
        internal
        view
        returns (Deal memory deal)
    {
        deal.buyer = buyer;
        deal.seller = seller;
        deal.arbiter = t.arbiter;
        deal.asset = t.asset;
        deal.amount = uint128(amount);
        deal.bond = t.bond;
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

    /// @dev Whether the escrow would take `deal` from this market (parties distinct, market authorised).
    function _dealPossible(Deal memory deal) internal view returns (bool) {
        address arbiter = deal.arbiter;
        if (deal.buyer == deal.seller || (arbiter != address(0) && (arbiter == deal.buyer || arbiter == deal.seller))) {
            return false;
        }
        return IAgentEscrow(escrow).isMarket(address(this));
    }

    /// @inheritdoc IAuctionBase
    function openHeldSelf(Deal calldata deal) external returns (uint256) {
        if (msg.sender != address(this)) revert CreditsOnlySelf(msg.sender);
        return _openHeld(deal, true);
    }

    /// @dev `_openHeld(deal, true)` in its own call frame: 0 when it reverts, so a settlement the escrow or
    /// the token refuses (a token that rebased down leaves this contract short of what it sends; an escrow
    /// in deficit refuses the asset) voids the sale instead of locking the bids and the bond forever. A
    /// caller who starves the inner call of gas to void a good sale is refused (`CreditsInsufficientGas`):
    /// the inner call got 63/64 of what was left, so a failure that leaves under 1/64 was out of gas; so is a
    /// `settle` run from inside an escrow call (the escrow's guard refuses it: the revert is bubbled up).
    /// ETH sales open directly (no token can shrink what this contract holds, and `_dealPossible` checked
    /// what the escrow refuses): the self-call would cost them ~3k gas for nothing.
    function _tryOpenHeld(Deal memory deal) internal returns (uint256 dealId) {
        if (deal.asset == address(0)) return _openHeld(deal, true);
        uint256 before = gasleft();
        try this.openHeldSelf(deal) returns (uint256 id) {
            return id;
        } catch {
            if (gasleft() <= before / 64) revert CreditsInsufficientGas(before);
            // The escrow's reentrancy guard refuses `openFor` while one of its own calls runs foreign code (a
            // payout, a token hook, an ETH withdrawal): that says nothing about the deal, and taking it for a
            // refusal let anyone who can make the escrow call it void any cleared sale (Review 2). Bubble it
            // up instead (bounded copy: 4 bytes, whatever the revert data's size).
            bytes4 reentrant = ReentrancyGuardReentrantCall.selector;
            assembly ("memory-safe") {
                if eq(returndatasize(), 4) {
                    returndatacopy(0, 0, 4)
                    if eq(shr(224, mload(0)), shr(224, reentrant)) { revert(0, 4) }
                }
            }
            return 0;
        }
    }

    /// @dev Fund and open `deal` in the escrow with coins this contract holds (`deal.amount`, plus the bond
    /// when `bondPosted`). Callers check `_dealPossible` first.
    function _openHeld(Deal memory deal, bool bondPosted) internal returns (uint256 dealId) {
        uint256 value = uint256(deal.amount) + (bondPosted ? deal.bond : 0);
        if (deal.asset == address(0)) {
            // slither-disable-next-line arbitrary-send-eth -- the receiver is the immutable escrow fixed at deployment
            return IAgentEscrow(escrow).openFor{value: value}(deal, bondPosted);
        }
        // off the auction's books; in deficit its share leaves and the escrow splits what arrived pro rata, in
        // surplus the deal grows to the share that left (Review 2)
        uint256 sent = _sendOut(deal.asset, escrow, value);
        if (sent > value && bondPosted) DealLib.grow(deal, sent, value); // value: amount + bond
        return IAgentEscrow(escrow).openFor(deal, bondPosted);
    }

    // =============================================================================================
    // Moving coins
    // =============================================================================================

    /// @dev Take `amount` from the caller: ETH must arrive as `msg.value`; ERC-20 is pulled, refused while the
    /// auction holds less of it than its books (`AssetDeficit`), and the amount actually received is booked
    /// and returned (fee-on-transfer tokens).
    // slither-disable-next-line msg-value-in-nonpayable -- all callers are payable; DutchAuction inherits it unused
    function _receive(address asset, uint256 amount) internal returns (uint256 received) {
        if (asset == address(0)) {
            if (msg.value != amount) revert AuctionWrongValue(amount, msg.value);
            return amount;
        }
        if (msg.value != 0) revert AuctionWrongValue(0, msg.value);
        received = _pullBooked(asset, amount);
    }

    function _toUint96(uint256 amount) internal pure returns (uint96) {
        // slither-disable-next-line incorrect-equality -- zero received is never a valid amount; not a balance race
        if (amount == 0 || amount > type(uint96).max) revert AuctionInvalidAmount(amount);
        return uint96(amount);
    }
}

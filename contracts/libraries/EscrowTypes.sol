// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Life cycle of an escrow deal. Values only ever increase along a deal's life (DESIGN §6.2).
enum DealState {
    None, //          0: no deal under this id
    AwaitingBond, //  1: buyer's funds locked; the terms ask for a seller bond that is not posted yet
    Funded, //        2: funds (and bond, if any) locked; waiting for the seller's deliverable
    Submitted, //     3: deliverable hash submitted; the buyer's review window is running
    Disputed, //      4: buyer disputed within the review window; waiting for the arbiter
    Accepted, //      5: terminal: buyer accepted, seller paid
    Finalized, //     6: terminal: review window lapsed, anyone settled as if accepted
    Resolved, //      7: terminal: arbiter ruled, or the default ruling applied after the ruling deadline
    Refunded, //      8: terminal: no delivery by the deadline, buyer refunded (plus the bond)
    Cancelled, //     9: terminal: cancelled before delivery, everyone got their money back
    Rejected //      10: terminal: buyer rejected the deliverable of an arbiter-less deal in its review window;
    //                   amount and posted bond went to the buyer
}

/// @notice The terms of a deal. Only a hash of it is stored; callers pass the struct back in calldata.
/// The `DealCreated` event carries it whole so clients can rebuild it; `BondPosted` and `FundsReleased`
/// say how `bond` and `amount` change afterwards (the stored hash is then of the updated struct).
/// @dev All members are static: the ABI encoding is 15 words, equal to the memory layout (hashing relies
/// on that). Timestamps are unix seconds.
struct Deal {
    address buyer; //            pays; the only party that can accept, dispute, release
    address seller; //           delivers; paid on acceptance (minus protocol fee)
    address arbiter; //          optional (zero: no disputes possible); rules on disputes
    address asset; //            ERC-20 token, or address(0) for ETH
    uint128 amount; //           price still locked in the deal (what actually arrived; lowered by releases)
    uint128 bond; //             seller collateral: required amount, then what was actually posted
    bytes32 termsHash; //        hash of the off-chain spec (resource id, quantity, quality guarantee)
    uint40 promisedBy; //        soft delivery time: the late-penalty clock starts here
    uint40 deliverBy; //         hard delivery deadline: no submission by then => anyone can refund
    uint32 reviewWindow; //      seconds after submission the buyer has to accept or dispute
    uint32 rulingWindow; //      seconds after the review window the arbiter has to rule
    uint16 penaltyBpsPerHour; // late penalty: bps of the price per hour late (pro rata per second)
    uint16 penaltyCapBps; //     maximum total late penalty, bps of the price
    uint16 arbiterFeeBps; //     arbiter's fee, bps of the locked amount, paid only when it rules
    uint16 defaultSellerBps; //  split applied if the arbiter never rules (seller's share of amount and bond)
}

/// @notice The storage word of one deal (after Uniswap v4's `Slot0`: a value type with getters and setters,
/// no inline masks at the call sites):
///   bits 72..255  keccak256(abi.encode(deal)) >> 72   (second-preimage resistance 2^184)
///   bit   64      funds were released early (their net is in the escrow's `_released`; saves raters a read)
///   bits 50..63   ruling: 0 = no arbiter ruling (default split), else the arbiter's sellerBps + 1
///   bit   49      seller asked to cancel
///   bit   48      buyer asked to cancel
///   bits  8..47   submittedAt (uint40), 0 until the deliverable is submitted
///   bits  0..7    DealState
type DealSlot is uint256;

using DealLib for DealSlot global;

/// @notice Locked and owed-fee totals of one asset in one word (touched together on settlement):
///   bits   0..159  locked (wider than any one deal's 128-bit amount: no single deal fills it)
///   bits 160..255  protocol fees owed (fees beyond 96 bits are credited to the fee recipient instead)
type AssetTotals is uint256;

using TotalsLib for AssetTotals global;

/// @notice Getters and setters of {AssetTotals}.
library TotalsLib {
    uint256 internal constant MAX_LOCKED = type(uint160).max;
    uint256 internal constant MAX_FEES = type(uint96).max;

    function locked(AssetTotals t) internal pure returns (uint256) {
        return uint160(AssetTotals.unwrap(t));
    }

    function fees(AssetTotals t) internal pure returns (uint256) {
        return AssetTotals.unwrap(t) >> 160;
    }

    /// @notice `t` with `value` more locked; the caller checks `locked + value <= MAX_LOCKED`.
    function addLocked(AssetTotals t, uint256 value) internal pure returns (AssetTotals) {
        unchecked {
            return AssetTotals.wrap(AssetTotals.unwrap(t) + value);
        }
    }

    /// @notice `t` with `value` less locked and `fee` more owed; the caller checks both bounds.
    function unlock(AssetTotals t, uint256 value, uint256 fee) internal pure returns (AssetTotals) {
        unchecked {
            return AssetTotals.wrap(AssetTotals.unwrap(t) - value + (fee << 160));
        }
    }

    /// @notice `t` with no fees owed (locked kept).
    function clearFees(AssetTotals t) internal pure returns (AssetTotals) {
        return AssetTotals.wrap(uint160(AssetTotals.unwrap(t)));
    }
}

/// @notice Hashing, fee and packed-state helpers for deals.
library DealLib {
    uint256 internal constant DEAL_WORDS_SIZE = 15 * 32;
    uint256 internal constant HASH_MASK = ~uint256(type(uint72).max);
    uint256 internal constant RELEASED = 1 << 64;
    uint256 internal constant BUYER_CANCEL = 1 << 48;
    uint256 internal constant SELLER_CANCEL = 1 << 49;
    uint256 private constant STATE_MASK = 0xff;
    uint256 private constant RULING_SHIFT = 50;
    uint256 private constant RULING_MASK = 0x3fff; // 14 bits: sellerBps + 1 <= 10,001

    /// @notice Top bit of every keyed deal id: keyed ids never meet the sequential ones (which stay below it).
    uint256 internal constant KEYED = 1 << 255;

    /// @notice The id of the deal `market` opens under `key` (`openForKey`):
    /// keccak256(abi.encode(market, key)) with the top bit set.
    function keyedId(address market, bytes32 key) internal pure returns (uint256 id) {
        assembly ("memory-safe") {
            mstore(0x00, market)
            mstore(0x20, key)
            id := or(keccak256(0x00, 0x40), KEYED)
        }
    }

    /// @notice keccak256(abi.encode(deal)) of a calldata struct.
    function hashCalldata(Deal calldata deal) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, deal, DEAL_WORDS_SIZE)
            h := keccak256(p, DEAL_WORDS_SIZE)
        }
    }

    /// @notice keccak256(abi.encode(deal)) of a memory struct (memory layout equals the ABI encoding).
    function hashMemory(Deal memory deal) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := keccak256(deal, DEAL_WORDS_SIZE)
        }
    }

    /// @notice The slot for a deal with hash `h`, state `s` and submission time `t`.
    function pack(bytes32 h, DealState s, uint256 t) internal pure returns (DealSlot) {
        return DealSlot.wrap((uint256(h) & HASH_MASK) | (t << 8) | uint256(uint8(s)));
    }

    function isEmpty(DealSlot slot) internal pure returns (bool) {
        return DealSlot.unwrap(slot) == 0;
    }

    function state(DealSlot slot) internal pure returns (DealState) {
        return DealState(uint8(DealSlot.unwrap(slot)));
    }

    function submittedAt(DealSlot slot) internal pure returns (uint256) {
        return uint40(DealSlot.unwrap(slot) >> 8);
    }

    function buyerCancelled(DealSlot slot) internal pure returns (bool) {
        return DealSlot.unwrap(slot) & BUYER_CANCEL != 0;
    }

    function sellerCancelled(DealSlot slot) internal pure returns (bool) {
        return DealSlot.unwrap(slot) & SELLER_CANCEL != 0;
    }

    /// @notice The arbiter's ruling (`ruled` false: the default split applied or no dispute).
    function ruling(DealSlot slot) internal pure returns (bool ruled, uint256 sellerBps) {
        uint256 r = (DealSlot.unwrap(slot) >> RULING_SHIFT) & RULING_MASK;
        return (r != 0, r == 0 ? 0 : r - 1);
    }

    /// @notice True when the slot was made from terms hashing to `h`.
    function matches(DealSlot slot, bytes32 h) internal pure returns (bool) {
        return (DealSlot.unwrap(slot) ^ uint256(h)) & HASH_MASK == 0;
    }

    function withState(DealSlot slot, DealState s) internal pure returns (DealSlot) {
        return DealSlot.wrap((DealSlot.unwrap(slot) & ~STATE_MASK) | uint256(uint8(s)));
    }

    /// @notice `slot` in state `s` after the arbiter ruled `sellerBps` (<= 10,000).
    function withRuling(DealSlot slot, DealState s, uint256 sellerBps) internal pure returns (DealSlot) {
        uint256 w = DealSlot.unwrap(slot) & ~(STATE_MASK | (RULING_MASK << RULING_SHIFT));
        return DealSlot.wrap(w | ((sellerBps + 1) << RULING_SHIFT) | uint256(uint8(s)));
    }

    /// @notice `slot` in state Submitted at time `t` (cancel requests dropped: delivery supersedes them).
    function withSubmission(DealSlot slot, uint256 t) internal pure returns (DealSlot) {
        uint256 kept = DealSlot.unwrap(slot) & (HASH_MASK | RELEASED);
        return DealSlot.wrap(kept | (t << 8) | uint256(uint8(DealState.Submitted)));
    }

    /// @notice `slot` Funded under the terms hashing to `h` (the bond was posted; cancel requests dropped).
    function withBondPosted(DealSlot slot, bytes32 h) internal pure returns (DealSlot) {
        uint256 kept = DealSlot.unwrap(slot) & RELEASED;
        return DealSlot.wrap(kept | (uint256(h) & HASH_MASK) | uint256(uint8(DealState.Funded)));
    }

    /// @notice `slot` with the hash replaced by `h` and the released flag set (funds released early).
    function withRelease(DealSlot slot, bytes32 h) internal pure returns (DealSlot) {
        return DealSlot.wrap((DealSlot.unwrap(slot) & ~HASH_MASK) | (uint256(h) & HASH_MASK) | RELEASED);
    }

    function hasReleases(DealSlot slot) internal pure returns (bool) {
        return DealSlot.unwrap(slot) & RELEASED != 0;
    }

    /// @notice `slot` with the buyer's (`byBuyer`) or the seller's cancel request recorded.
    function withCancelRequest(DealSlot slot, bool byBuyer) internal pure returns (DealSlot) {
        return DealSlot.wrap(DealSlot.unwrap(slot) | (byBuyer ? BUYER_CANCEL : SELLER_CANCEL));
    }

    /// @notice Protocol fee on a payout of `value`, rounded UP: splitting a payout into small pieces
    /// (releases under 10,000 / feeBps wei) can never make the fee round away (issue 12, point 7).
    function feeOn(uint256 value, uint256 feeBps) internal pure returns (uint256) {
        // value < 2^161 (a locked total) and feeBps <= 500: no overflow, so no checks to pay for
        unchecked {
            return (value * feeBps + 9999) / 10_000;
        }
    }

    /// @notice `deal` (in memory) funded by a market with `sent` (> `value`, the amount plus bond it asks) of a
    /// token the market held more of than its books (a rebase up: the sale's claims grew to their share): the
    /// amount and the bond grow pro rata, so the deal carries that share instead of leaving it as surplus in
    /// the escrow for the escrow's other positions (Review 2). A share beyond 128 bits (huge-supply tokens
    /// only) leaves the deal as it is (the old behaviour: the excess stays in the escrow).
    function grow(Deal memory deal, uint256 sent, uint256 value) internal pure {
        if (sent > type(uint128).max) return;
        uint256 amount = uint256(deal.amount) * sent / value; // < 2^256: both factors < 2^128
        deal.amount = uint128(amount); // <= sent: amount <= value
        deal.bond = uint128(sent - amount);
    }

    /// @notice Late-delivery penalty for a deal submitted at `submitted`: pro rata per second after
    /// `promisedBy`, `penaltyBpsPerHour` of the amount per hour, capped at `penaltyCapBps` of it.
    function latePenalty(Deal calldata deal, uint256 submitted) internal pure returns (uint256) {
        uint256 promised = deal.promisedBy;
        uint256 rate = deal.penaltyBpsPerHour;
        if (rate == 0 || submitted <= promised) return 0;
        uint256 amount = deal.amount;
        uint256 penalty = (amount * rate * (submitted - promised)) / (3600 * 10_000);
        uint256 cap = (amount * deal.penaltyCapBps) / 10_000;
        return penalty < cap ? penalty : cap;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Life cycle of an auction. Values only move forward (DESIGN §6.2): Active -> Settled | NoSale |
/// Cancelled, each terminal and reached exactly once.
enum AuctionStatus {
    None, //      0: no auction under this id
    Active, //    1: accepting bids / commits / reveals, or ended and waiting for `settle`
    Settled, //   2: terminal: an escrow deal was opened between seller and winner
    NoSale, //    3: terminal: no valid bid (or the deal could not be opened); every coin returned
    Cancelled //  4: terminal: cancelled by its creator before any bid
}

/// @notice The escrow terms an auction settles into, fixed when the auction is created. Only its hash is
/// stored; `settle` and Dutch `buy` take it back in calldata (the creation event carries it whole).
/// Deadlines are relative to the settlement time `s`:
///   promisedBy = s + promiseDelay      (procurement: s + the winner's bid delivery time)
///   deliverBy  = s + deliveryDelay     (procurement: promisedBy + deliveryDelay, a grace period)
/// @dev All members are static, so `keccak256(abi.encode(t))` is the hash of 13 words. `creator` must be
/// the caller of `create`; keeping it in the hashed template spares settlement a storage read.
struct DealTemplate {
    address creator; //           the auction's creator: seller (English/Dutch/sealed) or buyer (procurement)
    address arbiter; //           dispute arbiter (required for sell side; zero: none); may not bid
    address asset; //             ERC-20 token, or address(0) for ETH; bids and deal use it
    uint128 bond; //              sell side: seller bond, posted at creation (> 0); procurement: minimum bid bond
    bytes32 termsHash; //         hash of the off-chain spec (resource, quantity, quality)
    uint32 promiseDelay; //       seconds after settlement the delivery is promised (ignored for procurement)
    uint32 deliveryDelay; //      seconds after settlement (procurement: after the promise) of the hard deadline
    uint32 reviewWindow; //       escrow review window
    uint32 rulingWindow; //       escrow ruling window
    uint16 penaltyBpsPerHour; //  escrow late penalty rate
    uint16 penaltyCapBps; //      escrow late penalty cap
    uint16 arbiterFeeBps; //      escrow arbiter fee
    uint16 defaultSellerBps; //   escrow default ruling split
}

/// @notice English auction parameters (ascending, open outcry).
struct EnglishParams {
    uint96 reserve; //          lowest acceptable first bid (>= 1)
    uint40 startTime; //        bids accepted while startTime <= now <= endTime
    uint40 endTime; //
    uint32 extension; //        anti-sniping: a bid with less than `extension` seconds left adds `extension`
    uint16 minIncrementBps; //  each bid >= high bid + max(1, high bid * bps / 10_000)
}

/// @notice Dutch auction parameters (descending price, first buyer wins).
struct DutchParams {
    uint128 startPrice; //  price at startTime
    uint128 floorPrice; //  price at endTime (>= 1, <= startPrice)
    uint40 startTime; //    purchases accepted while startTime <= now <= endTime
    uint40 endTime; //
}

/// @notice Sealed-bid (commit-reveal) auction parameters.
struct SealedParams {
    uint96 reserve; //     lowest eligible bid (>= 1); Vickrey winners pay at least this
    uint40 commitEnd; //   commits while now <= commitEnd
    uint40 revealEnd; //   reveals while commitEnd < now <= revealEnd; settle after
    uint16 penaltyBps; //  share of the deposit a non-revealer forfeits to the winner (> 0 for Vickrey)
    bool vickrey; //       true: second-price (winner pays max(second bid, reserve)); false: first-price
}

/// @notice Procurement (reverse) auction parameters. score = priceWeight * price + timeWeight * delivery;
/// the lowest score wins.
struct ProcurementParams {
    uint96 budget; //       most the buyer pays; locked at creation, the rest returned at settlement
    uint40 bidEnd; //       open: bids while now <= bidEnd; sealed: commits while now <= bidEnd
    uint40 revealEnd; //    sealed only: reveals while bidEnd < now <= revealEnd
    uint16 penaltyBps; //   sealed only: share of the bond a provider that never reveals forfeits to the buyer
    bool sealedBids; //     true: commit-reveal; false: open bids that must beat the best score
    uint64 priceWeight; //  weight of the price (asset units)
    uint64 timeWeight; //   weight of the delivery time (seconds)
    uint32 maxDelivery; //  longest acceptable delivery time, seconds after settlement
}

/// @notice A bidder's record in a commit-reveal auction (sealed-bid and sealed procurement), one word (after
/// Uniswap v4's `Slot0`: a value type with getters and setters, no inline masks at the call sites):
///   before the reveal  keccak256(abi.encode(commitment, deposit)) >> 1   (top bit clear; 0 = no commitment)
///   after it           bit 255 set | upper << 96 | deposit (uint96)
/// where `upper` is the revealed bid (sealed-bid, uint96) or `price << 32 | delivery` (procurement).
type BidRecord is uint256;

using BidRecordLib for BidRecord global;

/// @notice Getters and setters of {BidRecord}.
library BidRecordLib {
    uint256 private constant REVEALED = 1 << 255;

    /// @dev The record of a commitment with `deposit` locked behind it.
    function sealedOf(bytes32 commitment, uint256 deposit_) internal pure returns (BidRecord) {
        return BidRecord.wrap(uint256(keccak256(abi.encode(commitment, deposit_))) >> 1);
    }

    /// @dev The record after a reveal (`upper` must fit 159 bits, `deposit_` 96).
    function revealedOf(uint256 upper, uint256 deposit_) internal pure returns (BidRecord) {
        return BidRecord.wrap(REVEALED | (upper << 96) | deposit_);
    }

    function isEmpty(BidRecord r) internal pure returns (bool) {
        return BidRecord.unwrap(r) == 0;
    }

    function isRevealed(BidRecord r) internal pure returns (bool) {
        return BidRecord.unwrap(r) & REVEALED != 0;
    }

    /// @dev Whether `r` is the sealed record of `commitment` with `deposit_` behind it.
    function matches(BidRecord r, bytes32 commitment, uint256 deposit_) internal pure returns (bool) {
        return BidRecord.unwrap(r) == uint256(keccak256(abi.encode(commitment, deposit_))) >> 1;
    }

    /// @dev The locked deposit (or bond) of a revealed record.
    function deposit(BidRecord r) internal pure returns (uint256) {
        return uint96(BidRecord.unwrap(r));
    }

    /// @dev The revealed sealed bid.
    function amount(BidRecord r) internal pure returns (uint256) {
        return uint96(BidRecord.unwrap(r) >> 96);
    }
}

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
    Cancelled //      9: terminal: cancelled before delivery, everyone got their money back
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

/// @notice Hashing and packed-state helpers for deals.
/// A deal occupies one storage word: the top 192 bits of the terms hash, then the mutable state.
///   bits 64..255  keccak256(abi.encode(deal)) >> 64   (second-preimage resistance 2^192)
///   bits  8..47   submittedAt (uint40), 0 until the deliverable is submitted
///   bit   48      buyer asked to cancel
///   bit   49      seller asked to cancel
///   bits  0..7    DealState
library DealLib {
    uint256 internal constant DEAL_WORDS_SIZE = 15 * 32;
    uint256 internal constant HASH_MASK = ~uint256(type(uint64).max);
    uint256 internal constant BUYER_CANCEL = 1 << 48;
    uint256 internal constant SELLER_CANCEL = 1 << 49;

    /// @notice keccak256(abi.encode(deal)) of a calldata struct.
    function hashCalldata(Deal calldata deal) internal pure returns (bytes32 h) {
        // slither-disable-next-line assembly -- hashes the 15 static calldata words (= abi.encode) in place
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, deal, DEAL_WORDS_SIZE)
            h := keccak256(p, DEAL_WORDS_SIZE)
        }
    }

    /// @notice keccak256(abi.encode(deal)) of a memory struct (memory layout equals the ABI encoding).
    function hashMemory(Deal memory deal) internal pure returns (bytes32 h) {
        // slither-disable-next-line assembly -- memory layout of Deal equals abi.encode (15 static words)
        assembly ("memory-safe") {
            h := keccak256(deal, DEAL_WORDS_SIZE)
        }
    }

    /// @notice The packed storage word for a deal with hash `h`, state `s` and submission time `t`.
    function pack(bytes32 h, DealState s, uint256 t) internal pure returns (uint256) {
        return (uint256(h) & HASH_MASK) | (t << 8) | uint256(uint8(s));
    }

    function state(uint256 packed) internal pure returns (DealState) {
        return DealState(uint8(packed));
    }

    function submittedAt(uint256 packed) internal pure returns (uint256) {
        return uint40(packed >> 8);
    }

    /// @notice True when the stored word was made from terms hashing to `h`.
    function matches(uint256 packed, bytes32 h) internal pure returns (bool) {
        return (packed ^ uint256(h)) & HASH_MASK == 0;
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

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Which side of the trade the maker of an offer is on.
enum Side {
    Sell, // 0: the maker sells the resource; the taker buys (pays the price, maker posts the bond)
    Buy //   1: the maker requests to buy (pays the price); the taker sells (posts the bond)
}

/// @notice A multi-issue offer: price, quantity, delivery time, bond, late penalty, arbiter and review terms.
/// Signed off chain (EIP-712, domain bound to chain id and OfferBook address) or posted on chain.
/// @dev All members are static, so the ABI encoding (and the calldata layout) is 22 words, each word equal
/// to the member's EIP-712 `encodeData` value: the struct hash is keccak256(typehash ‖ the 22 words).
/// Amounts are in the asset's smallest unit; durations in seconds.
struct Offer {
    address maker; //              signs (EOA) or validates (ERC-1271 wallet) the offer
    Side side; //                  Sell (maker is the seller) or Buy (maker is the buyer)
    bytes32 resourceId; //         what is traded (e.g. keccak256("gpu-hour/h100")), for discovery
    bytes32 termsHash; //          hash of the off-chain spec; becomes the deal's termsHash
    address asset; //              ERC-20 token, or address(0) for ETH
    uint128 unitPrice; //          price per unit
    uint64 quantity; //            total units on offer
    uint64 minFill; //             smallest fill, unless the fill takes the whole remainder
    uint128 bondPerUnit; //        seller collateral per unit, locked in the deal with the price
    uint32 deliverySeconds; //     promised delivery time after the fill (late penalty clock starts then)
    uint32 graceSeconds; //        hard deadline = promised + grace; no delivery by then => refund
    uint32 reviewWindow; //        buyer's review window after delivery
    uint32 rulingWindow; //        arbiter's ruling window after the review window
    uint16 penaltyBpsPerHour; //   late penalty, bps of the price per hour after the promised time
    uint16 penaltyCapBps; //       late penalty cap, bps of the price
    address arbiter; //            optional arbiter (zero: no disputes)
    uint16 arbiterFeeBps; //       arbiter's fee when it rules, bps of the price
    uint16 defaultSellerBps; //    split applied if the arbiter never rules
    address taker; //              designated taker (private offer), or zero for anyone
    uint40 expiry; //              last second (inclusive) the offer can be filled or posted
    uint256 salt; //               makes otherwise equal offers distinct
    uint64 counter; //             the maker's counter when signing; incrementCounter() voids all older offers
}

/// @notice Hashing and status helpers for offers.
/// Status word per offer digest (zero for a signed offer; only `post` writes it):
///   bit 0   posted on chain (fills need no signature)
/// Cancellation is per maker, not per digest: the low 7 bits of `salt` put every offer in one of 128 cancel
/// slots, and `cancel` marks the slot in the maker's account word for its current counter (every offer of
/// that maker, counter and slot dies; clients give each live offer its own slot).
/// Fills are recorded in the escrow: the fill of `q` units starting at unit `s` opens the deal keyed by
/// fillKey(digest, s) (`openForKey`), whose termsHash is fillTermsHash(offer.termsHash, s, q).
library OfferLib {
    /// @notice EIP-712 type string of {Offer}.
    string internal constant OFFER_TYPE = "Offer(address maker,uint8 side,bytes32 resourceId,bytes32 termsHash,"
        "address asset,uint128 unitPrice,uint64 quantity,uint64 minFill,uint128 bondPerUnit,uint32 deliverySeconds,"
        "uint32 graceSeconds,uint32 reviewWindow,uint32 rulingWindow,uint16 penaltyBpsPerHour,uint16 penaltyCapBps,"
        "address arbiter,uint16 arbiterFeeBps,uint16 defaultSellerBps,address taker,uint40 expiry,uint256 salt,"
        "uint64 counter)";
    /// @notice keccak256(OFFER_TYPE).
    bytes32 internal constant OFFER_TYPEHASH = keccak256(bytes(OFFER_TYPE));

    uint256 internal constant OFFER_WORDS_SIZE = 22 * 32;
    uint256 internal constant POSTED = 1;
    /// @notice Number of cancel slots per maker and counter (the account word's bitmap width).
    uint256 internal constant CANCEL_SLOTS = 128;

    /// @notice The cancel slot of an offer with `salt`: its low 7 bits.
    function cancelSlot(uint256 salt) internal pure returns (uint256) {
        return salt & (CANCEL_SLOTS - 1);
    }

    /// @notice Whether the slot of `salt` is set in the cancel bitmap `cancelled`.
    function slotCancelled(uint256 cancelled, uint256 salt) internal pure returns (bool) {
        return (cancelled >> (salt & (CANCEL_SLOTS - 1))) & 1 != 0;
    }

    /// @notice The escrow key of the fill of offer `offerHash` that starts at unit `start`:
    /// keccak256(abi.encode(offerHash, start)).
    function fillKey(bytes32 offerHash, uint256 start) internal pure returns (bytes32 key) {
        assembly ("memory-safe") {
            mstore(0x00, offerHash)
            mstore(0x20, start)
            key := keccak256(0x00, 0x40)
        }
    }

    /// @notice The termsHash of the deal a fill opens: keccak256(abi.encode(termsHash, start, quantity)),
    /// the offer's spec hash with the units [start, start + quantity) it bought. It is what proves, for the
    /// next fill, where this one ended.
    function fillTermsHash(bytes32 termsHash, uint256 start, uint256 quantity) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, termsHash)
            mstore(add(p, 0x20), start)
            mstore(add(p, 0x40), quantity)
            h := keccak256(p, 0x60)
        }
    }

    /// @notice EIP-712 struct hash of a calldata offer: keccak256(OFFER_TYPEHASH ‖ abi.encode(offer)).
    /// @dev Hashes the raw calldata words; a word with dirty high bits hashes differently from its clean
    /// value (so no valid signature matches it), and Solidity's calldata validation rejects it on read.
    function structHash(Offer calldata offer) internal pure returns (bytes32 h) {
        bytes32 typehash = OFFER_TYPEHASH;
        // slither-disable-next-line assembly -- EIP-712 hash of the 22 static calldata words, no copy
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            calldatacopy(add(p, 0x20), offer, OFFER_WORDS_SIZE)
            h := keccak256(p, add(OFFER_WORDS_SIZE, 0x20))
        }
    }
}

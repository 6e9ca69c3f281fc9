// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Life cycle of a call-market batch. Values only move forward (DESIGN §6.2).
enum BatchStatus {
    None, //     0: no batch under this id
    Open, //     1: orders while now <= closeTime; then waiting to be cleared (until the settlement deadline)
    Cleared, //  2: the uniform price is verified; settlement walks the orders
    Done //      3: terminal: every order settled or released
}

/// @notice Parameters of a batch besides its escrow template.
struct BatchParams {
    uint40 closeTime; //     last second (inclusive) orders can be placed or cancelled
    uint32 settleWindow; //  seconds after closeTime during which the batch can be cleared and settled
    uint8 tickExp; //        price tick = 10**tickExp asset units; order prices are in ticks
}

/// @notice What `batchInfo` returns about a batch.
struct BatchView {
    address asset; //       ERC-20 token, or address(0) for ETH
    uint256 closeTime; //   last second orders can be placed or cancelled
    uint256 settleBy; //    last second the batch can be cleared or settled; releases after it
    uint256 tick; //        asset units per price tick
    uint256 bond; //        seller bond per unit
    uint256 bidCount; //    bids ever placed (ids 0..bidCount-1)
    uint256 askCount; //    asks ever placed
    BatchStatus status; //
    uint256 priceTicks; //  clearing price in ticks (once cleared)
    uint256 volume; //      units that trade (once cleared)
}

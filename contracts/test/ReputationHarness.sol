// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Deal, DealState} from "../libraries/EscrowTypes.sol";

interface IRate {
    function rate(uint256 dealId, Deal calldata deal, uint8 score, bytes32 tag, bytes32 commentHash) external;
}

/// @notice Test only: an escrow stand-in whose every deal is Accepted with the seller paid `weight`, so a
/// registry wired to it can be filled to its packed limits in one transaction (a Sybil's self-deals in a
/// huge-supply token, without the thousand transactions that take on a real escrow).
contract SettledEscrowStub {
    uint256 public weight;

    function setWeight(uint256 weight_) external {
        weight = weight_;
    }

    function settlement(uint256, Deal calldata) external view returns (DealState, uint256) {
        return (DealState.Accepted, weight);
    }
}

/// @notice Test only: a buyer contract that rates its seller for deals `first .. first + count - 1`.
contract RatingLoop {
    function rateMany(IRate registry, Deal calldata deal, uint256 first, uint256 count, uint8 score) external {
        for (uint256 i; i < count; ++i) {
            registry.rate(first + i, deal, score, bytes32(0), bytes32(0));
        }
    }
}

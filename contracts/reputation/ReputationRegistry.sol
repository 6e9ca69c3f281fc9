// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {IReputationRegistry} from "../interfaces/IReputationRegistry.sol";
import {Deal, DealState} from "../libraries/EscrowTypes.sol";

/// @title ReputationRegistry
/// @notice See {IReputationRegistry}. No admin, no funds. A rating weighs what the seller was actually paid
/// (net of the protocol fee, which the escrow charges rounded up on every settlement path): every unit of
/// weight cost at least feeBps / 10,000 units of the asset in fees.
/// Storage per rating: one bit in a bitmap (two bits per deal, 128 deals per word, so the word is
/// usually already non-zero), one packed summary word per (agent, asset) and one per (agent, asset, tag):
///   bits   0..31   count
///   bits  32..135  total weight   (uint104)
///   bits 136..255  weight * score (uint120)
contract ReputationRegistry is IReputationRegistry {
    /// @notice Highest score.
    uint8 public constant MAX_SCORE = 100;
    /// @notice Weights are capped here (about 7.9e28 base units: more than all ETH in existence).
    uint256 public constant WEIGHT_CAP = type(uint96).max;

    IAgentEscrow private immutable _escrow;

    mapping(uint256 word => uint256 bits) private _rated;
    mapping(address agent => mapping(address asset => uint256 packed)) private _summary;
    mapping(address agent => mapping(address asset => mapping(bytes32 tag => uint256 packed))) private _tags;

    constructor(IAgentEscrow escrow_) {
        _escrow = escrow_;
    }

    /// @inheritdoc IReputationRegistry
    function rate(uint256 dealId, Deal calldata deal, uint8 score, bytes32 tag, bytes32 commentHash) external {
        if (score > MAX_SCORE) revert ReputationInvalidScore(score, MAX_SCORE);
        bool isBuyer = msg.sender == deal.buyer;
        if (!isBuyer && msg.sender != deal.seller) revert ReputationNotParty(dealId, msg.sender);
        // One call: checks the terms and returns what the seller was actually paid, net of protocol fees.
        (DealState state, uint256 weight) = _escrow.settlement(dealId, deal);
        if (state == DealState.None) revert ReputationTermsMismatch(dealId);
        if (state != DealState.Accepted && state != DealState.Finalized && state != DealState.Resolved) {
            revert ReputationDealNotSettled(dealId, state);
        }
        uint256 key = (dealId << 1) | (isBuyer ? 0 : 1);
        uint256 bit = 1 << (key & 255);
        uint256 bits = _rated[key >> 8];
        if (bits & bit != 0) revert ReputationAlreadyRated(dealId, msg.sender);
        _rated[key >> 8] = bits | bit;

        address ratee = isBuyer ? deal.seller : deal.buyer;
        address asset = deal.asset;
        if (weight > WEIGHT_CAP) weight = WEIGHT_CAP;
        _summary[ratee][asset] = _add(_summary[ratee][asset], weight, score);
        if (tag != bytes32(0)) _tags[ratee][asset][tag] = _add(_tags[ratee][asset][tag], weight, score);
        emit Rated(dealId, msg.sender, ratee, asset, score, tag, commentHash, weight);
    }

    /// @inheritdoc IReputationRegistry
    function summary(address agent, address asset)
        external
        view
        returns (uint256 count, uint256 totalWeight, uint256 weightedScoreSum)
    {
        return _unpack(_summary[agent][asset]);
    }

    /// @inheritdoc IReputationRegistry
    function tagSummary(address agent, address asset, bytes32 tag)
        external
        view
        returns (uint256 count, uint256 totalWeight, uint256 weightedScoreSum)
    {
        return _unpack(_tags[agent][asset][tag]);
    }

    /// @inheritdoc IReputationRegistry
    function weightedScore(address agent, address asset) external view returns (uint256) {
        (, uint256 total, uint256 weighted) = _unpack(_summary[agent][asset]);
        return total == 0 ? 0 : (weighted * 100) / total;
    }

    /// @inheritdoc IReputationRegistry
    function hasRated(uint256 dealId, bool byBuyer) external view returns (bool) {
        uint256 key = (dealId << 1) | (byBuyer ? 0 : 1);
        return _rated[key >> 8] & (1 << (key & 255)) != 0;
    }

    /// @inheritdoc IReputationRegistry
    function escrow() external view returns (address) {
        return address(_escrow);
    }

    /// @dev Saturating add: a rating never reverts, so nobody can make an agent unratable by filling its
    /// totals. When the weight total would pass 104 bits, both sums are halved first (the score they encode
    /// stays, older volume counts half) and the new rating still moves the score; the count stops at 2^32-1.
    /// weight <= 2^96 and weighted <= 100 * total < 2^111 keep every sum inside its field.
    function _add(uint256 packed, uint256 weight, uint256 score) private pure returns (uint256) {
        (uint256 count, uint256 total, uint256 weighted) = _unpack(packed);
        if (count < type(uint32).max) count += 1;
        if (total + weight > type(uint104).max) {
            total >>= 1;
            weighted >>= 1;
        }
        total += weight;
        weighted += weight * score;
        return count | (total << 32) | (weighted << 136);
    }

    function _unpack(uint256 packed) private pure returns (uint256 count, uint256 total, uint256 weighted) {
        return (uint32(packed), uint104(packed >> 32), packed >> 136);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Deal, DealState} from "../libraries/EscrowTypes.sol";

/// @title IReputationRegistry
/// @notice Feedback that cannot be farmed by strangers: after an escrow deal is settled and paid
/// (Accepted, Finalized or Resolved), its buyer may rate the seller and its seller may rate the buyer,
/// once each per deal (score 0..100, a tag, a hash of an off-chain comment). Ratings are weighted by the
/// deal's value, so buying reputation costs real volume and its protocol fees.
///
/// The escrow stores only a hash of each deal's terms; the rater passes the `Deal` struct back and the
/// registry checks it with the escrow's `settlement` view, which also says what the seller was actually
/// paid for the deal net of protocol fees (releases included, refunds and bond returns excluded): that is the
/// weight, capped at 2^96 - 1. A self-dealer therefore pays at least feeBps / 10,000 of every unit of weight
/// in fees, on every settlement path (an arbiter ruling 0% to the seller yields weight 0).
/// Totals saturate instead of reverting (see `summary`): no agent can make itself unratable.
/// Aggregates are kept per (agent, asset) and per (agent, asset, tag): weights in different assets are not
/// comparable, and a deal in a worthless self-made token must not outweigh real ETH volume.
interface IReputationRegistry {
    /// @notice `rater` rated `ratee` for deal `dealId`.
    event Rated(
        uint256 indexed dealId,
        address indexed rater,
        address indexed ratee,
        address asset,
        uint8 score,
        bytes32 tag,
        bytes32 commentHash,
        uint256 weight
    );

    /// @notice The deal is in `state`; only Accepted, Finalized and Resolved deals can be rated.
    error ReputationDealNotSettled(uint256 dealId, DealState state);
    /// @notice The `Deal` struct passed is not the escrow's terms for `dealId`.
    error ReputationTermsMismatch(uint256 dealId);
    /// @notice `caller` is neither the buyer nor the seller of `dealId`.
    error ReputationNotParty(uint256 dealId, address caller);
    /// @notice `rater` already rated its counterparty for `dealId`.
    error ReputationAlreadyRated(uint256 dealId, address rater);
    /// @notice `score` is above `maxScore`.
    error ReputationInvalidScore(uint256 score, uint256 maxScore);

    /// @notice Rate the counterparty of the settled deal `dealId` (`deal` is its current terms).
    /// `tag` zero means untagged (only the agent's overall figures change).
    function rate(uint256 dealId, Deal calldata deal, uint8 score, bytes32 tag, bytes32 commentHash) external;

    /// @notice Overall figures of `agent` in `asset`: number of ratings, summed weights, and
    /// sum(weight * score). The value-weighted score is `weightedScoreSum / totalWeight`. When the weight total
    /// would pass 2^104 both sums are halved before a rating is added (the count stops at 2^32 - 1).
    function summary(address agent, address asset)
        external
        view
        returns (uint256 count, uint256 totalWeight, uint256 weightedScoreSum);

    /// @notice The same figures restricted to ratings carrying `tag`.
    function tagSummary(address agent, address asset, bytes32 tag)
        external
        view
        returns (uint256 count, uint256 totalWeight, uint256 weightedScoreSum);

    /// @notice Value-weighted score of `agent` in `asset`, times 100 (0..10,000); 0 without ratings.
    function weightedScore(address agent, address asset) external view returns (uint256);

    /// @notice Whether the buyer (`byBuyer`) or the seller of `dealId` already rated its counterparty.
    function hasRated(uint256 dealId, bool byBuyer) external view returns (bool);

    /// @notice The escrow whose deals can be rated.
    function escrow() external view returns (address);
}

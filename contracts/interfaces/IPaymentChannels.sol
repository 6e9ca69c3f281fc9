// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ChannelKey, ChannelStatus, ChannelClaim} from "../libraries/ChannelTypes.sol";
import {ICredits} from "./ICredits.sol";

/// @title IPaymentChannels
/// @notice Singleton holding many unidirectional payer -> payee micropayment channels in ETH or ERC-20.
/// The payer locks a deposit until an expiry and pays off-chain with cumulative EIP-712 vouchers
/// `Voucher(bytes32 channelId, uint256 amount)`; the payee redeems the latest one whenever it likes
/// (`claim`, the channel stays open) or ends the channel (`close`). A voucher above the deposit pays at
/// most the deposit. After the expiry anyone can return the unclaimed rest to the payer (`reclaim`).
/// Both parties can end the channel early by agreeing on a final amount (`cooperativeClose`, signatures
/// over `CooperativeClose(bytes32 channelId, uint256 amount, uint256 deadline)`, void after `deadline`, so
/// a consent given before later vouchers cannot be replayed once the payee has waited it out).
///
/// The EIP-712 domain (name "AgentMarket PaymentChannels", version "1") binds the chain id and this
/// contract; the channel id binds payer, payee, asset and salt, and a used id can never be reopened, so
/// a voucher cannot be replayed across channels, chains or contracts. Payer signatures are low-s ECDSA
/// or ERC-1271 (the wallet's check gas-capped inside `claimMany`): EOAs and ERC-1271 wallets both work.
///
/// Deadlines: claim and close while `now <= expiry`; reclaim once `now > expiry`.
/// Payouts are pushed (ETH with a fixed gas allowance, ERC-20 `transfer` with a gas cap) and one that fails
/// becomes a withdrawable credit ({ICredits}: `withdraw`, `withdrawTo`, `creditOf`, `PayoutCredited`).
interface IPaymentChannels is ICredits {
    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice A channel was opened; `deposit` is what actually arrived.
    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed payee,
        address asset,
        uint256 salt,
        uint256 deposit,
        uint256 expiry
    );
    /// @notice The payer added `added` (what arrived) and/or moved the expiry; new totals follow.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 added, uint256 deposit, uint256 expiry);
    /// @notice A voucher was redeemed: the payee got `paid`; `claimed` is the new cumulative total.
    event ChannelClaimed(bytes32 indexed channelId, uint256 paid, uint256 claimed);
    /// @notice The channel closed (by the payee, or cooperatively): the payee got `paid` in this call,
    /// the payer got `refunded`; `claimed` is the final cumulative amount paid to the payee.
    event ChannelClosed(bytes32 indexed channelId, uint256 paid, uint256 refunded, uint256 claimed, bool cooperative);
    /// @notice After expiry the unclaimed `refunded` went back to the payer.
    event ChannelReclaimed(bytes32 indexed channelId, address indexed by, uint256 refunded, uint256 claimed);
    /// @notice `claimMany` skipped `channelId` because the item would have reverted with `reason`
    /// (an ABI-encoded custom error).
    event ChannelClaimSkipped(bytes32 indexed channelId, bytes reason);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice The channel is in `status`, which does not allow this action (None: it does not exist).
    error ChannelNotOpen(bytes32 channelId, ChannelStatus status);
    /// @notice A channel with this key exists or existed; use another salt.
    error ChannelAlreadyExists(bytes32 channelId);
    /// @notice `caller` does not hold the role this action needs on `channelId`.
    error ChannelUnauthorized(bytes32 channelId, address caller);
    /// @notice Payer and payee must be non-zero and distinct.
    error ChannelInvalidParties(address payer, address payee);
    /// @notice `expiry` must be at least `minimum` (later than now when opening; not earlier than the
    /// current expiry when extending).
    error ChannelInvalidExpiry(uint256 expiry, uint256 minimum);
    /// @notice The deposit (or what actually arrived) is zero.
    error ChannelZeroAmount();
    /// @notice The total deposit `amount` exceeds the packed limit `max` (2^104 - 1).
    error ChannelAmountTooLarge(uint256 amount, uint256 max);
    /// @notice `msg.value` must be `expected` (the amount for ETH channels, zero for ERC-20 ones).
    error ChannelWrongValue(uint256 expected, uint256 sent);
    /// @notice The channel expired at `expiry` (`now` > `expiry`): vouchers can no longer be redeemed.
    error ChannelExpired(bytes32 channelId, uint256 expiry, uint256 now);
    /// @notice The channel has not expired yet (`now` <= `expiry`): reclaim is not open yet.
    error ChannelNotExpired(bytes32 channelId, uint256 expiry, uint256 now);
    /// @notice The signature is not `signer`'s over this channel's voucher (or close) digest.
    error ChannelInvalidSignature(bytes32 channelId, address signer);
    /// @notice The voucher grants `amount` (capped at the deposit), not more than the `claimed` total.
    error ChannelNothingToClaim(bytes32 channelId, uint256 amount, uint256 claimed);
    /// @notice The top-up neither adds funds nor moves the expiry.
    error ChannelNothingToChange(bytes32 channelId);
    /// @notice The cooperative-close consent expired at `deadline` (`now` > `deadline`).
    error ChannelCloseExpired(bytes32 channelId, uint256 deadline, uint256 now);

    // ---------------------------------------------------------------------------------------------
    // Channel life cycle
    // ---------------------------------------------------------------------------------------------

    /// @notice Open a channel as its payer (`key.payer == msg.sender`) with a deposit and an expiry.
    /// ETH: send `amount` as value; ERC-20: approve it first (what actually arrives is the deposit).
    function open(ChannelKey calldata key, uint256 amount, uint40 expiry) external payable returns (bytes32 id);

    /// @notice Payer only: add `amount` (ETH: as value) and/or move the expiry to `newExpiry`
    /// (0 keeps it; otherwise it must not be earlier than the current one).
    function topUp(ChannelKey calldata key, uint256 amount, uint40 newExpiry) external payable;

    /// @notice Anyone redeems the payer's voucher for cumulative `amount`: the payee gets
    /// `min(amount, deposit) - claimed`. The channel stays open. Only while `now <= expiry`.
    function claim(ChannelKey calldata key, uint256 amount, bytes calldata signature) external returns (uint256 paid);

    /// @notice `claim` for many channels in one transaction; items that would revert are skipped and
    /// reported (`ChannelClaimSkipped`). Consecutive items with the same payee and asset are paid out once.
    function claimMany(ChannelClaim[] calldata claims) external returns (uint256 succeeded, uint256 totalPaid);

    /// @notice Payee only, while `now <= expiry`: redeem the voucher (skipped when `amount` is not above
    /// the claimed total, e.g. 0 with an empty signature) and close; the payer gets the rest back.
    function close(ChannelKey calldata key, uint256 amount, bytes calldata signature) external;

    /// @notice Close early at a final cumulative `amount` both parties agreed on, at any time while open
    /// and `now <= deadline` (the signed consent's deadline).
    /// The caller's own signature is not needed: the payee calling passes only `payerSignature`, the payer
    /// calling only `payeeSignature`; anyone else passes both.
    function cooperativeClose(
        ChannelKey calldata key,
        uint256 amount,
        uint256 deadline,
        bytes calldata payerSignature,
        bytes calldata payeeSignature
    ) external;

    /// @notice Anyone, once `now > expiry`: return the unclaimed rest to the payer and end the channel.
    function reclaim(ChannelKey calldata key) external returns (uint256 refunded);

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice keccak256(abi.encode(key)).
    function channelId(ChannelKey calldata key) external pure returns (bytes32);

    /// @notice The mutable state of a channel.
    function channel(bytes32 id)
        external
        view
        returns (ChannelStatus status, uint256 deposit, uint256 claimed, uint256 expiry);

    /// @notice The EIP-712 digest the payer signs for a voucher of cumulative `amount`.
    function voucherDigest(bytes32 id, uint256 amount) external view returns (bytes32);

    /// @notice The EIP-712 digest both parties sign to close cooperatively at cumulative `amount`, valid
    /// until `deadline` (inclusive).
    function closeDigest(bytes32 id, uint256 amount, uint256 deadline) external view returns (bytes32);

    /// @notice Total credits owed in `asset` (solvency: balance == open deposits - claimed + credits).
    function creditTotal(address asset) external view returns (uint256);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ICredits
/// @notice Pull payments shared by every contract that pays out (after Seaport's `TokenTransferrerErrors`:
/// the events and errors are declared once). A payout that cannot be pushed (a receiver that reverts or
/// burns its gas stipend, a token that refuses the transfer) becomes a credit its owner withdraws, so no
/// receiver can block anyone else's settlement.
interface ICredits {
    /// @notice A payout to `account` could not be pushed and was credited instead; `withdraw` pulls it.
    event PayoutCredited(address indexed account, address indexed asset, uint256 amount);
    /// @notice `account` withdrew its credit in `asset` to `to`.
    event Withdrawn(address indexed account, address indexed asset, address to, uint256 amount);

    /// @notice `account` has no credit in `asset` (or nothing is owed to it there).
    error CreditsNothingToWithdraw(address account, address asset);
    /// @notice Sending `amount` of `asset` to `to` failed (withdrawals revert instead of crediting again).
    error CreditsTransferFailed(address asset, address to, uint256 amount);
    /// @notice Too little gas left to give an ETH payout receiver its full stipend (`gasLeft` remained).
    error CreditsInsufficientGas(uint256 gasLeft);

    /// @notice Pull the caller's credit in `asset` (address(0): ETH) to the caller.
    function withdraw(address asset) external returns (uint256 amount);

    /// @notice Pull the caller's credit in `asset` to `to` (for accounts that cannot receive themselves).
    function withdrawTo(address asset, address to) external returns (uint256 amount);

    /// @notice The credit `account` can withdraw in `asset`.
    function creditOf(address account, address asset) external view returns (uint256);
}

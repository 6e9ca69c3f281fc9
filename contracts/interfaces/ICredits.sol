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
    /// @notice The token took `taken` from this contract to transfer `value` (a tax charged to the sender on
    /// top of the transfer): the transfer was undone, so no other position pays that tax.
    error CreditsSenderTax(address asset, uint256 value, uint256 taken);
    /// @notice `caller` is not this contract (`pushMeasured` is its own measured transfer).
    error CreditsOnlySelf(address caller);
    /// @notice Too little gas left to give an ETH payout receiver its full stipend (`gasLeft` remained).
    error CreditsInsufficientGas(uint256 gasLeft);

    /// @notice Pull the caller's credit in `asset` (address(0): ETH) to the caller.
    function withdraw(address asset) external returns (uint256 amount);

    /// @notice Pull the caller's credit in `asset` to `to` (for accounts that cannot receive themselves).
    function withdrawTo(address asset, address to) external returns (uint256 amount);

    /// @notice Pull `amount` of the caller's credit in `asset` to `to` (all of it when `amount` exceeds it).
    /// The credit pays for what leaves the contract: with a token that taxes the sender on top of a
    /// transfer, name an amount whose tax fits in the credit (`withdraw` retries once with the tax off, which
    /// needs the token to attempt the full transfer first). What does not leave stays the caller's credit.
    function withdrawPart(address asset, address to, uint256 amount) external returns (uint256 sent);

    /// @notice Callable only by the contract itself (every other caller gets `CreditsOnlySelf`): transfer
    /// `value` of the ERC-20 `asset` to `to` forwarding at most `gasCap` gas, and revert unless the transfer
    /// succeeded and took at most `maxTaken` from this contract (`CreditsSenderTax`). A call frame of its own, so
    /// a payout the token over-charges is undone alone and the caller falls back to a credit. Returns what
    /// left this contract.
    function pushMeasured(address asset, address to, uint256 value, uint256 maxTaken, uint256 gasCap)
        external
        returns (uint256 taken);

    /// @notice The credit `account` can withdraw in `asset`.
    function creditOf(address account, address asset) external view returns (uint256);
}

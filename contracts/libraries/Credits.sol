// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ICredits} from "../interfaces/ICredits.sol";
import {Asset} from "./Asset.sol";

/// @title Credits
/// @notice Base of every contract that pays out: push a payout with a gas stipend, and credit it when the
/// push fails; per-asset credit totals make solvency checkable (balance == locked + credits [+ fees]).
/// Adopt it by inheriting (`contract X is IX, Credits`, IX extending {ICredits}), paying with `_pay` and
/// booking with `_credit`; `withdraw`, `withdrawTo` and `creditOf` come with it. Two variants, declared here
/// next to the defaults so the differences stay in one file (an heir pays with `_payCapped` instead of
/// `_pay`, or overrides `_credit` and `_withdraw`; unused variants add no bytecode to other heirs):
/// `_payCapped` caps the gas of an ERC-20 payout `transfer` (batch entry points: one hostile token must not
/// sink the batch; PaymentChannels), and `_creditUntotalled`/`_withdrawUntotalled` keep no per-asset total
/// (the auctions: no on-chain solvency view, and a second storage write per outbid would break the 60k bid
/// budget).
abstract contract Credits is ICredits, ReentrancyGuardTransient {
    /// @notice Gas forwarded to an ETH payout receiver; a receiver needing more is credited instead.
    uint256 public constant PAYOUT_GAS = 30_000;
    /// @dev Gas an ERC-20 `transfer` gets in `_payCapped` (a constant, not a parameter: saves the stack
    /// work on every payout). PaymentChannels publishes it as TOKEN_PAYOUT_GAS.
    uint256 internal constant CAPPED_TOKEN_GAS = 100_000;

    mapping(address account => mapping(address asset => uint256)) internal _credits;
    // slither-disable-next-line unused-state -- real and accepted: the auctions keep no totals (_creditUntotalled)
    mapping(address asset => uint256) internal _creditTotals;

    /// @inheritdoc ICredits
    function withdraw(address asset) external nonReentrant returns (uint256) {
        return _withdraw(asset, msg.sender);
    }

    /// @inheritdoc ICredits
    function withdrawTo(address asset, address to) external nonReentrant returns (uint256) {
        return _withdraw(asset, to);
    }

    /// @inheritdoc ICredits
    function creditOf(address account, address asset) external view returns (uint256) {
        return _credits[account][asset];
    }

    function _withdraw(address asset, address to) internal virtual returns (uint256 amount) {
        amount = _credits[msg.sender][asset];
        if (amount == 0) revert CreditsNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        _creditTotals[asset] -= amount;
        emit Withdrawn(msg.sender, asset, to, amount);
        _send(asset, to, amount);
    }

    /// @dev Send or revert (withdrawals and fee collection: the caller chose the receiver).
    function _send(address asset, address to, uint256 value) internal {
        if (!Asset.wrap(asset).tryPushAll(to, value)) revert CreditsTransferFailed(asset, to, value);
    }

    /// @dev Push a payout; if the receiver refuses it (revert, out of gas, token failure) credit it instead.
    function _pay(address asset, address to, uint256 value) internal {
        // slither-disable-next-line incorrect-equality -- skips exactly-zero payouts (an amount)
        if (value == 0) return;
        bool ok;
        if (asset == address(0)) {
            // Make sure the receiver really gets PAYOUT_GAS (63/64 rule), so a caller cannot pick a gas limit
            // that makes a contract receiver fail on purpose.
            if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + 12_000) revert CreditsInsufficientGas(gasleft());
            // AssetLib.tryCallValue inlined by hand: the legacy optimizer keeps it a jump, ~50 gas per payout
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, value, 0, 0, 0, 0)
            }
        } else {
            ok = Asset.wrap(asset).tryTransfer(to, value);
        }
        if (!ok) _credit(to, asset, value);
    }

    /// @dev Book `value` of `asset` as a withdrawable credit of `to`.
    function _credit(address to, address asset, uint256 value) internal virtual {
        _credits[to][asset] += value;
        _creditTotals[asset] += value;
        emit PayoutCredited(to, asset, value);
    }

    // ---------------------------------------------------------------------------------------------
    // Variants (see the contract notice)
    // ---------------------------------------------------------------------------------------------

    /// @dev `_pay` whose ERC-20 leg forwards exactly CAPPED_TOKEN_GAS and reads one word of returndata (the
    /// 63/64 rule checked as for ETH, so no caller can starve the token call on purpose).
    function _payCapped(address asset, address to, uint256 value) internal {
        // slither-disable-next-line incorrect-equality -- skips exactly-zero payouts (an amount)
        if (value == 0) return;
        bool ok;
        if (asset == address(0)) {
            if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + 12_000) revert CreditsInsufficientGas(gasleft());
            // AssetLib.tryCallValue inlined by hand: the legacy optimizer keeps it a jump, ~50 gas per payout
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, value, 0, 0, 0, 0)
            }
        } else {
            if (gasleft() < CAPPED_TOKEN_GAS + CAPPED_TOKEN_GAS / 63 + 12_000) {
                revert CreditsInsufficientGas(gasleft());
            }
            ok = Asset.wrap(asset).tryTransferCapped(to, value, CAPPED_TOKEN_GAS);
        }
        if (!ok) _credit(to, asset, value);
    }

    /// @dev `_credit` without the per-asset total.
    function _creditUntotalled(address to, address asset, uint256 value) internal {
        _credits[to][asset] += value;
        emit PayoutCredited(to, asset, value);
    }

    /// @dev `_withdraw` without the per-asset total.
    function _withdrawUntotalled(address asset, address to) internal returns (uint256 amount) {
        amount = _credits[msg.sender][asset];
        if (amount == 0) revert CreditsNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        emit Withdrawn(msg.sender, asset, to, amount);
        _send(asset, to, amount);
    }
}

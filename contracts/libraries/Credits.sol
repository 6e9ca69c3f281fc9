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
        return _withdraw(asset, msg.sender, type(uint256).max);
    }

    /// @inheritdoc ICredits
    function withdrawTo(address asset, address to) external nonReentrant returns (uint256) {
        return _withdraw(asset, to, type(uint256).max);
    }

    /// @inheritdoc ICredits
    function withdrawPart(address asset, address to, uint256 amount) external nonReentrant returns (uint256) {
        return _withdraw(asset, to, amount);
    }

    /// @inheritdoc ICredits
    function creditOf(address account, address asset) external view returns (uint256) {
        return _credits[account][asset];
    }

    /// @inheritdoc ICredits
    function pushMeasured(address asset, address to, uint256 value, uint256 maxTaken, uint256 gasCap)
        external
        returns (uint256 taken)
    {
        if (msg.sender != address(this)) revert CreditsOnlySelf(msg.sender);
        Asset a = Asset.wrap(asset);
        uint256 before = a.selfBalance();
        if (!a.tryTransferCapped(to, value, gasCap)) revert CreditsTransferFailed(asset, to, value);
        uint256 held = a.selfBalance();
        if (held < before) taken = before - held; // a receiver hook may pay in: then nothing was over-charged
        if (taken > maxTaken) revert CreditsSenderTax(asset, value, taken);
    }

    /// @dev Send `part` of the caller's credit (all of it when `part` exceeds it) to `to`; the credit pays for
    /// whatever leaves this contract (a sender tax included, up to the whole credit), and what does not leave
    /// stays the caller's credit. Returns what left.
    function _withdraw(address asset, address to, uint256 part) internal virtual returns (uint256 sent) {
        uint256 credit = _credits[msg.sender][asset];
        if (credit == 0) revert CreditsNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        _creditTotals[asset] -= credit;
        sent = _send(asset, to, part < credit ? part : credit, credit);
        emit Withdrawn(msg.sender, asset, to, sent);
        if (sent < credit) _credit(msg.sender, asset, credit - sent);
    }

    /// @dev `_send` where the owner of `value` has exactly `value` to spend.
    function _send(address asset, address to, uint256 value) internal returns (uint256) {
        return _send(asset, to, value, value);
    }

    /// @dev Send or revert (withdrawals, fee collection, funding the escrow: the caller chose the receiver).
    /// ERC-20 transfers are measured: what leaves this contract never exceeds `budget` (>= `value`), the coins
    /// of whoever is paid. A token that taxes the sender on top of the transfer beyond the budget is sent
    /// `value` less the excess it tried to take, once, so the owner pays its own tax and nobody else (when
    /// the token cannot even attempt the full transfer, `withdrawPart` names a smaller amount). Returns what
    /// left (at most `budget`).
    function _send(address asset, address to, uint256 value, uint256 budget) internal returns (uint256 sent) {
        if (asset == address(0)) {
            if (!Asset.wrap(asset).tryPushAll(to, value)) revert CreditsTransferFailed(asset, to, value);
            return value;
        }
        bool ok;
        (ok, sent) = _pushMeasured(asset, to, value, budget, type(uint256).max);
        if (ok) return sent;
        if (sent > budget && sent - budget < value) {
            uint256 net = value - (sent - budget);
            (ok, sent) = _pushMeasured(asset, to, net, budget, type(uint256).max);
            if (ok) return sent;
            if (sent != 0) revert CreditsSenderTax(asset, net, sent);
        }
        revert CreditsTransferFailed(asset, to, value);
    }

    /// @dev Transfer `value` of the ERC-20 `asset` to `to` through `pushMeasured` (its own call frame: a
    /// transfer that takes more than `maxTaken` from this contract is undone alone). `ok`: the transfer
    /// stands, and `taken` (at most `maxTaken`) left this contract; otherwise `taken` is what the token tried to take when it over-charged,
    /// else 0. No returndata beyond 100 bytes (all of it this contract's own) is copied.
    function _pushMeasured(address asset, address to, uint256 value, uint256 maxTaken, uint256 gasCap)
        internal
        returns (bool ok, uint256 taken)
    {
        bytes4 push = this.pushMeasured.selector;
        bytes4 senderTax = CreditsSenderTax.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, push)
            mstore(add(p, 0x04), asset)
            mstore(add(p, 0x24), to)
            mstore(add(p, 0x44), value)
            mstore(add(p, 0x64), maxTaken)
            mstore(add(p, 0x84), gasCap)
            ok := call(gas(), address(), 0, p, 0xa4, 0, 0)
            switch ok
            case 1 {
                returndatacopy(0, 0, 0x20)
                taken := mload(0)
            }
            default {
                if eq(returndatasize(), 0x64) {
                    returndatacopy(p, 0, 0x64)
                    if eq(shr(224, mload(p)), shr(224, senderTax)) { taken := mload(add(p, 0x44)) }
                }
            }
        }
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
            // measured: a payout the token over-charges (sender tax) is undone and credited instead
            (ok,) = _pushMeasured(asset, to, value, value, type(uint256).max);
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
            // two 63/64 cuts (the measuring frame, then the token call) and two balance reads before the cap
            if (gasleft() < CAPPED_TOKEN_GAS + CAPPED_TOKEN_GAS / 31 + 20_000) {
                revert CreditsInsufficientGas(gasleft());
            }
            (ok,) = _pushMeasured(asset, to, value, value, CAPPED_TOKEN_GAS);
        }
        if (!ok) _credit(to, asset, value);
    }

    /// @dev `_credit` without the per-asset total.
    function _creditUntotalled(address to, address asset, uint256 value) internal {
        _credits[to][asset] += value;
        emit PayoutCredited(to, asset, value);
    }

    /// @dev `_withdraw` without the per-asset total.
    function _withdrawUntotalled(address asset, address to, uint256 part) internal returns (uint256 sent) {
        uint256 credit = _credits[msg.sender][asset];
        if (credit == 0) revert CreditsNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        sent = _send(asset, to, part < credit ? part : credit, credit);
        emit Withdrawn(msg.sender, asset, to, sent);
        if (sent < credit) _creditUntotalled(msg.sender, asset, credit - sent);
    }
}

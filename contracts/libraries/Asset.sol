// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice ETH (`address(0)`) or an ERC-20 token, as one value type (after Uniswap v4's `Currency`): every
/// contract that holds coins moves them through these few functions, so each rule about odd tokens is
/// written once. Pull is measured (what arrived, not what was asked); push gives an ETH receiver a fixed
/// gas stipend and never copies returndata, and reports failure instead of reverting, so the caller can
/// fall back to a credit (see {Credits}).
type Asset is address;

using AssetLib for Asset global;

/// @notice Functions of {Asset}.
library AssetLib {
    using SafeERC20 for IERC20;

    /// @notice The asset's address is not a token that answers `balanceOf` with one word.
    error AssetBalanceUnreadable(address asset);
    /// @notice This contract holds `balance` of `asset` against `owed` on its books: the token took coins from
    /// it (a negative rebase, a sender tax). New money is refused while the deficit lasts, so the loss stays
    /// with the positions that held the token when it happened instead of being paid by a newcomer's coins.
    error AssetDeficit(address asset, uint256 balance, uint256 owed);

    function isNative(Asset asset) internal pure returns (bool) {
        return Asset.unwrap(asset) == address(0);
    }

    /// @notice This contract's balance of the ERC-20 `asset` (a bare staticcall, no returndata copy beyond
    /// one word).
    function selfBalance(Asset asset) internal view returns (uint256 held) {
        bytes4 unreadable = AssetBalanceUnreadable.selector;
        assembly ("memory-safe") {
            mstore(0x00, 0x70a08231) // balanceOf(address)
            mstore(0x20, address())
            if iszero(and(gt(returndatasize(), 0x1f), staticcall(gas(), asset, 0x1c, 0x24, 0x00, 0x20))) {
                mstore(0x00, unreadable)
                mstore(0x04, asset)
                revert(0x00, 0x24)
            }
            held := mload(0x00)
        }
    }

    /// @notice Pull `value` of the ERC-20 `asset` from `from`; returns what actually arrived (balance
    /// difference: fee-on-transfer tokens credit less than was asked).
    function pullMeasured(Asset asset, address from, uint256 value) internal returns (uint256) {
        return pullMeasured(asset, from, value, 0);
    }

    /// @notice {pullMeasured} for a contract that keeps per-asset books: refuses the pull (`AssetDeficit`)
    /// when this contract's balance is below `owed`, what its books say it holds for others. The balance is
    /// read anyway to measure the pull, so the check costs a comparison.
    function pullMeasured(Asset asset, address from, uint256 value, uint256 owed) internal returns (uint256) {
        uint256 before = selfBalance(asset);
        if (before < owed) revert AssetDeficit(Asset.unwrap(asset), before, owed);
        // slither-disable-next-line arbitrary-send-erc20 -- a library cannot see its callers: each passes msg.sender (AgentEscrow.create, postBond)
        IERC20(Asset.unwrap(asset)).safeTransferFrom(from, address(this), value);
        return selfBalance(asset) - before;
    }

    /// @notice Send `value` wei to `to` with `ethGas` forwarded and no returndata copied. False on failure.
    function tryCallValue(address to, uint256 value, uint256 ethGas) internal returns (bool ok) {
        assembly ("memory-safe") {
            ok := call(ethGas, to, value, 0, 0, 0, 0)
        }
    }

    /// @notice Transfer `value` of the ERC-20 `asset` to `to` (no, true or false return value accepted as
    /// OpenZeppelin's `trySafeTransfer` does). False on failure.
    function tryTransfer(Asset asset, address to, uint256 value) internal returns (bool) {
        return IERC20(Asset.unwrap(asset)).trySafeTransfer(to, value);
    }

    /// @notice Transfer `value` of the ERC-20 `asset` to `to` forwarding at most `gasCap` gas and reading one
    /// word of returndata (OpenZeppelin's success rule: no return value from a contract, or `true`). A token
    /// that burns its gas or return-bombs fails alone instead of sinking the caller's batch. False on failure.
    function tryTransferCapped(Asset asset, address to, uint256 value, uint256 gasCap) internal returns (bool ok) {
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, value));
        assembly ("memory-safe") {
            let success := call(gasCap, asset, 0, add(data, 0x20), mload(data), 0, 0x20)
            switch returndatasize()
            case 0 { ok := and(success, gt(extcodesize(asset), 0)) }
            default { ok := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0), 1))) }
        }
    }

    /// @notice Try to push `value` to `to`: ETH with `ethGas` forwarded and no returndata copied (a receiver
    /// can neither return-bomb nor pick its own gas), ERC-20 through `trySafeTransfer`. False on failure.
    function tryPush(Asset asset, address to, uint256 value, uint256 ethGas) internal returns (bool ok) {
        ok = isNative(asset) ? tryCallValue(to, value, ethGas) : tryTransfer(asset, to, value);
    }

    /// @notice Push `value` to `to` with all remaining gas (withdrawals: the receiver chose to be called).
    function tryPushAll(Asset asset, address to, uint256 value) internal returns (bool ok) {
        if (isNative(asset)) {
            assembly ("memory-safe") {
                ok := call(gas(), to, value, 0, 0, 0, 0)
            }
        } else {
            ok = IERC20(Asset.unwrap(asset)).trySafeTransfer(to, value);
        }
    }
}

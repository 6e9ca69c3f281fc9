// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

import {Actor} from "./HostileReceivers.sol";

/// @notice An ERC-20 that reports failure by returning false instead of reverting (like early tokens, ZRX,
/// BAT): transfers to a refused address, and transfers without the balance or allowance, return false.
contract FalseReturnToken is ERC20 {
    mapping(address => bool) public refused;

    constructor() ERC20("False Return", "FRT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setRefused(address account, bool value) external {
        refused[account] = value;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (refused[to] || balanceOf(msg.sender) < value) return false;
        return super.transfer(to, value);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (refused[to] || balanceOf(from) < value || allowance(from, msg.sender) < value) return false;
        return super.transferFrom(from, to, value);
    }
}

/// @notice An ERC-20 with an ERC-777-style receive hook: a transfer to a registered receiver calls its
/// `onTokenReceived(from, value)` with all remaining gas and reverts the transfer if the hook reverts. The
/// receiver thereby runs code in the middle of the payer contract's payout, with the full gas budget.
contract HookToken is ERC20 {
    mapping(address => bool) public hooked;

    constructor() ERC20("Hook Token", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setHooked(address account, bool value) external {
        hooked[account] = value;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && hooked[to]) {
            (bool ok, bytes memory reason) = to.call(abi.encodeWithSignature("onTokenReceived(address,uint256)", from, value));
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
    }
}

/// @notice A contract agent that, when paid in ETH or through a token hook, accepts, refuses, burns all the
/// gas it gets, or calls back into `target` with `data` (recording the outcome of every attempt).
contract HookReceiver is Actor {
    /// @notice 0 accept, 1 revert, 2 burn all gas, 3 re-enter.
    uint8 public mode;
    address public target;
    bytes public data;
    uint256 public attempts;
    bool public lastOk;
    bytes public lastResult;

    event Reentered(bool ok, bytes result);

    error HookReceiverRefused();

    function configure(uint8 mode_, address target_, bytes calldata data_) external {
        mode = mode_;
        target = target_;
        data = data_;
    }

    function onTokenReceived(address, uint256) external {
        _react();
    }

    receive() external payable {
        _react();
    }

    function _react() private {
        uint8 m = mode;
        if (m == 1) revert HookReceiverRefused();
        if (m == 2) {
            while (true) {}
        }
        if (m == 3) {
            mode = 0; // once: the attempt itself may pay this receiver again
            (bool ok, bytes memory result) = target.call(data);
            attempts += 1;
            lastOk = ok;
            lastResult = result;
            emit Reentered(ok, result);
        }
    }
}

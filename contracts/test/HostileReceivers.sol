// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A contract agent: relays calls (so it can be a buyer or seller) and receives ETH.
abstract contract Actor {
    /// @notice Call `target` with `data` and `msg.value`; bubbles a revert up unchanged.
    function execute(address target, bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}

/// @notice Refuses every ETH payment.
contract RevertingReceiver is Actor {
    /// @notice Raised on every incoming payment.
    error RevertingReceiverRefused();

    receive() external payable {
        revert RevertingReceiverRefused();
    }
}

/// @notice Burns all the gas it is given when paid (an infinite loop).
contract GasBurningReceiver is Actor {
    uint256 public counter;

    receive() external payable {
        while (true) {
            counter += 1;
        }
    }
}

/// @notice When paid, calls back into a target with `reenterData` and reports the outcome in an event
/// (no storage writes, so the attempt fits in a small gas allowance). The payment is accepted either way.
contract ReenteringReceiver is Actor {
    /// @notice The re-entrant call returned `ok` with `result` (the revert data when it failed).
    event Reentered(bool ok, bytes result);

    address public target;
    bytes public reenterData;

    function arm(address target_, bytes calldata data) external {
        target = target_;
        reenterData = data;
    }

    receive() external payable {
        address t = target;
        if (t == address(0)) return;
        (bool ok, bytes memory result) = t.call(reenterData);
        emit Reentered(ok, result);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Reverts every way Solidity can, so error decoding can be tested on each backend.
contract Reverter {
    /// @notice A custom error with arguments of several ABI types.
    error ReverterCustom(uint256 code, address who, bytes32 tag, string why);
    /// @notice A custom error without arguments.
    error ReverterBare();

    uint256 public counter;

    function customError(uint256 code) external {
        counter += 1;
        revert ReverterCustom(code, msg.sender, keccak256("tag"), "custom");
    }

    function bareError() external {
        counter += 1;
        revert ReverterBare();
    }

    function requireString() external {
        counter += 1;
        require(counter == 0, "Reverter: require failed");
    }

    function panicDivide(uint256 d) external returns (uint256) {
        counter += 1;
        return 1 / d;
    }

    function panicAssert() external {
        counter += 1;
        assert(counter == 0);
    }

    function emptyRevert() external {
        counter += 1;
        revert();
    }

    function ok() external {
        counter += 1;
    }
}

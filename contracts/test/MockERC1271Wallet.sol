// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Actor} from "./HostileReceivers.sol";

/// @notice An ERC-1271 agent wallet: approves digests signed by its `owner` key while `approving` is set
/// (a refusing wallet returns a non-magic value for everything). Relays calls so it can fill, post,
/// approve tokens and deposit, and accepts ETH.
contract MockERC1271Wallet is Actor {
    bytes4 internal constant MAGIC = 0x1626ba7e;

    address public immutable owner;
    bool public approving;

    constructor(address owner_, bool approving_) {
        owner = owner_;
        approving = approving_;
    }

    function setApproving(bool approving_) external {
        approving = approving_;
    }

    /// @notice ERC-1271: MAGIC when `signature` is `owner`'s ECDSA signature of `hash` and the wallet approves.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (!approving) return 0xffffffff;
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner ? MAGIC : bytes4(0xffffffff);
    }

    receive() external payable {}
}

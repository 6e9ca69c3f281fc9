// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Actor} from "./HostileReceivers.sol";

/// @notice An ERC-1271 agent wallet that approves what its `owner` signs while `hostile` is off, and once
/// armed burns all the gas `isValidSignature` is given (mode 1) or reverts with a large payload (mode 2,
/// a return bomb): the maker or payer that tries to sink a batch it is one item of.
contract GriefingSigner is Actor {
    bytes4 internal constant MAGIC = 0x1626ba7e;

    address public immutable owner;
    /// @notice 0 honest, 1 burn all gas, 2 revert with `bombSize` bytes.
    uint8 public mode;
    uint256 public bombSize;

    constructor(address owner_) {
        owner = owner_;
    }

    function setMode(uint8 mode_, uint256 bombSize_) external {
        mode = mode_;
        bombSize = bombSize_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (mode == 1) {
            uint256 x;
            while (true) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        if (mode == 2) {
            uint256 size = bombSize;
            assembly ("memory-safe") {
                revert(0, size)
            }
        }
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner ? MAGIC : bytes4(0xffffffff);
    }

    receive() external payable {}
}

/// @notice An ERC-20 whose transfers burn all the gas they are given once `burning` is set: the token of
/// one item in a batch trying to sink the rest.
contract GasBurningToken is ERC20 {
    bool public burning;
    uint256 public counter;

    constructor() ERC20("Gas Burner", "BURN") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBurning(bool burning_) external {
        burning = burning_;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (burning && from != address(0)) {
            while (true) {
                counter += 1;
            }
        }
        super._update(from, to, value);
    }
}

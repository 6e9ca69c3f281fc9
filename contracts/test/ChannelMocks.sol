// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @notice Plain mintable ERC-20 for channel tests.
contract ChannelTestToken is ERC20 {
    constructor() ERC20("Channel Test Token", "CTT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice ERC-20 that burns `feeBps` of every transfer: the receiver gets less than was sent.
contract ChannelFeeToken is ERC20 {
    uint256 public immutable feeBps;

    constructor(uint256 feeBps_) ERC20("Fee Token", "FEE") {
        feeBps = feeBps_;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = (value * feeBps) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}

/// @notice ERC-20 that refuses transfers to blocked accounts (like USDC's blacklist).
contract ChannelBlockingToken is ERC20 {
    mapping(address => bool) public blocked;

    constructor() ERC20("Blocking Token", "BLK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!blocked[to], "blocked");
        super._update(from, to, value);
    }
}

/// @notice A smart-contract agent wallet: ERC-1271 signatures by its owner key, arbitrary calls by the
/// owner, and a configurable (possibly hostile) reaction to incoming ETH.
contract ChannelAgentWallet is IERC1271 {
    enum Mode {
        Accept, //  0: take the ETH
        Revert, //  1: refuse it
        Burn, //    2: burn all gas it is given
        Reenter //  3: call `reenterTarget` with `reenterData`, record whether it succeeded, then accept
    }

    address public immutable owner;
    Mode public mode;
    address public reenterTarget;
    bytes public reenterData;
    bool public reentered;
    uint256 public reentryAttempts;

    constructor(address owner_) {
        owner = owner_;
        reentryAttempts = 1; // starts non-zero so counting stays cheap inside a payout's gas allowance
    }

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function setReentry(address target, bytes calldata data) external {
        reenterTarget = target;
        reenterData = data;
    }

    function execute(address to, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        require(msg.sender == owner, "not owner");
        (bool ok, bytes memory result) = to.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    receive() external payable {
        if (mode == Mode.Revert) revert("no thanks");
        if (mode == Mode.Burn) {
            while (true) {}
        }
        if (mode == Mode.Reenter) {
            reentryAttempts += 1;
            (bool ok,) = reenterTarget.call(reenterData);
            if (ok) reentered = true;
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Plain OpenZeppelin ERC-20 with open minting and a blocklist: transfers to a blocked address
/// revert (like USDC's blacklist), so tests can make an ERC-20 payout fail. Ships in the package (not the
/// test build): it is the local-chain test token of `Market.token` (agentmarket/testtoken.py); anyone may
/// mint, so never deploy it where value is real.
contract MockERC20 is ERC20 {
    /// @notice Transfers to `to` are refused.
    error MockBlocked(address to);

    uint8 private immutable _decimals;
    mapping(address => bool) public blocked;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    function _update(address from, address to, uint256 value) internal virtual override {
        if (blocked[to]) revert MockBlocked(to);
        super._update(from, to, value);
    }
}

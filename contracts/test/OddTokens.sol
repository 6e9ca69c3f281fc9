// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test only: a rebasing token (balances are shares times an index the owner moves, like stETH or
/// AMPL): `rebase(9000)` takes 10% from every holder at once, the escrow included.
contract RebasingToken {
    uint256 private constant ONE = 1e18;
    uint256 public index = ONE;
    mapping(address => uint256) public sharesOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalShares;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function decimals() external pure returns (uint8) {
        return 18;
    }

    function totalSupply() external view returns (uint256) {
        return (totalShares * index) / ONE;
    }

    function balanceOf(address account) public view returns (uint256) {
        return (sharesOf[account] * index) / ONE;
    }

    function mint(address to, uint256 amount) external {
        uint256 shares = (amount * ONE) / index;
        sharesOf[to] += shares;
        totalShares += shares;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Scale every balance by `bps` / 10,000.
    function rebase(uint256 bps) external {
        index = (index * bps) / 10_000;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) private {
        uint256 shares = (value * ONE + index - 1) / index; // round up: the sender never pays less
        sharesOf[from] -= shares;
        sharesOf[to] += shares;
        emit Transfer(from, to, value);
    }
}

/// @notice Test only: an ERC-20 that reverts on zero-value transfers (like LEND and some others).
contract RevertOnZeroToken is ERC20 {
    constructor() ERC20("Revert on zero", "RZT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        require(value != 0, "zero transfer");
        super._update(from, to, value);
    }
}

/// @notice Test only: an ERC-20 that charges the sender a tax on top of every transfer (`taxBps` of the value,
/// burned), so a sender's balance falls by value + tax while the receiver gets exactly `value`. The tax can
/// be switched on after deposits (as fee switches of real tokens can).
contract SenderTaxToken is ERC20 {
    uint256 public taxBps;

    constructor() ERC20("Sender tax", "STX") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setTax(uint256 bps) external {
        taxBps = bps;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        uint256 tax = (value * taxBps) / 10_000;
        if (from != address(0) && to != address(0) && tax != 0) super._update(from, address(0), tax);
    }
}

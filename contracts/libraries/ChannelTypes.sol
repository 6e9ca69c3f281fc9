// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The immutable identity of a payment channel. The channel id is keccak256(abi.encode(key)), so
/// the id commits to payer, payee, asset and salt; only the mutable part (status, expiry, deposit, claimed)
/// is stored, in one word. Callers pass the key back in calldata.
struct ChannelKey {
    address payer; //  funds the channel and signs vouchers; gets the unclaimed rest back
    address payee; //  receives what vouchers grant; may close early
    address asset; //  ERC-20 token, or address(0) for ETH
    uint256 salt; //   any value making the id unique for the same payer, payee and asset
}

/// @notice Life cycle of a channel. Values only ever increase (DESIGN §6.2).
enum ChannelStatus {
    None, //      0: no channel under this id
    Open, //      1: deposit locked; vouchers can be claimed until expiry
    Closed, //    2: terminal: closed by the payee or cooperatively; the rest went back to the payer
    Reclaimed //  3: terminal: the payer took back the unclaimed rest after expiry
}

/// @notice One entry of `claimMany`: a channel and the latest voucher for it.
struct ChannelClaim {
    ChannelKey key;
    uint256 amount; //    cumulative amount the voucher grants
    bytes signature; //   payer's EIP-712 signature over Voucher(channelId, amount)
}

/// @notice The storage word of a channel (after Uniswap v4's `Slot0`: a value type with getters and setters,
/// no inline masks at the call sites):
///   bits   0..7    ChannelStatus
///   bits   8..47   expiry (uint40, unix seconds; claims allowed while now <= expiry)
///   bits  48..151  deposit (uint104: everything ever deposited)
///   bits 152..255  claimed (uint104: cumulative amount paid to the payee, <= deposit)
type ChannelSlot is uint256;

using ChannelLib for ChannelSlot global;

/// @notice Channel id of a key, and getters and setters of {ChannelSlot}.
library ChannelLib {
    uint256 internal constant MAX_AMOUNT = type(uint104).max;
    uint256 internal constant KEY_SIZE = 4 * 32;

    /// @notice keccak256(abi.encode(key)) of a calldata key.
    function id(ChannelKey calldata key) internal pure returns (bytes32 h) {
        // slither-disable-next-line assembly -- hashes the 4 static calldata key words, as abi.encode would
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, key, KEY_SIZE)
            h := keccak256(p, KEY_SIZE)
        }
    }

    function pack(ChannelStatus s, uint256 expiry_, uint256 deposit_, uint256 claimed_)
        internal
        pure
        returns (ChannelSlot)
    {
        return ChannelSlot.wrap(uint256(uint8(s)) | (expiry_ << 8) | (deposit_ << 48) | (claimed_ << 152));
    }

    /// @dev Whether no channel was ever opened under this word's id.
    function isEmpty(ChannelSlot w) internal pure returns (bool) {
        return ChannelSlot.unwrap(w) == 0;
    }

    function status(ChannelSlot w) internal pure returns (ChannelStatus) {
        return ChannelStatus(uint8(ChannelSlot.unwrap(w)));
    }

    function expiry(ChannelSlot w) internal pure returns (uint256) {
        return uint40(ChannelSlot.unwrap(w) >> 8);
    }

    function deposit(ChannelSlot w) internal pure returns (uint256) {
        return uint104(ChannelSlot.unwrap(w) >> 48);
    }

    function claimed(ChannelSlot w) internal pure returns (uint256) {
        return ChannelSlot.unwrap(w) >> 152;
    }
}

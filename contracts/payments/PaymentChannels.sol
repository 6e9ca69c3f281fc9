// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";

import {IPaymentChannels} from "../interfaces/IPaymentChannels.sol";
import {ChannelKey, ChannelStatus, ChannelClaim, ChannelLib, ChannelSlot} from "../libraries/ChannelTypes.sol";
import {Credits} from "../libraries/Credits.sol";

/// @title PaymentChannels
/// @notice See {IPaymentChannels}. One storage word per channel (status, expiry, deposit, claimed; see
/// {ChannelLib}); the immutable key travels in calldata and hashes to the channel id. No admin. Payouts,
/// credits, withdrawals and the per-asset books come from {Credits}; every payout is `_payCapped` (off
/// the books, its share while they are off; ERC-20 legs get TOKEN_PAYOUT_GAS, so one hostile token cannot
/// sink a `claimMany`).
contract PaymentChannels is IPaymentChannels, EIP712, Credits {
    // No code: Slither 0.11 merges inherited `using X for *` by key, so EIP712's `ShortStrings for *`
    // hides ReentrancyGuardTransient's `TransientSlot for *`; without this line it cannot build IR
    // for the guard and silently skips SSA (and every reentrancy detector) for this whole contract.
    using TransientSlot for *;

    /// @notice Gas forwarded to an ERC-20 `transfer` payout; a token needing more is credited instead
    /// (withdrawals forward all gas).
    uint256 public constant TOKEN_PAYOUT_GAS = CAPPED_TOKEN_GAS;
    /// @notice Gas an ERC-1271 payer's `isValidSignature` gets in a `claimMany` item (a wallet needing more
    /// is skipped there and claims alone, where it gets all the gas).
    uint256 public constant BATCH_SIG_GAS = 50_000;
    /// @notice keccak256("Voucher(bytes32 channelId,uint256 amount)")
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 amount)");
    /// @notice keccak256("CooperativeClose(bytes32 channelId,uint256 amount,uint256 deadline)")
    bytes32 public constant CLOSE_TYPEHASH =
        keccak256("CooperativeClose(bytes32 channelId,uint256 amount,uint256 deadline)");

    mapping(bytes32 channelId => ChannelSlot) private _channels;

    constructor() EIP712("AgentMarket PaymentChannels", "1") {}

    // =============================================================================================
    // Life cycle
    // =============================================================================================

    /// @inheritdoc IPaymentChannels
    function open(ChannelKey calldata key, uint256 amount, uint40 expiry)
        external
        payable
        nonReentrant
        returns (bytes32 id)
    {
        id = ChannelLib.id(key);
        if (key.payer != msg.sender) revert ChannelUnauthorized(id, msg.sender);
        if (key.payee == address(0) || key.payee == key.payer) revert ChannelInvalidParties(key.payer, key.payee);
        if (expiry <= block.timestamp) revert ChannelInvalidExpiry(expiry, block.timestamp + 1);
        if (!_channels[id].isEmpty()) revert ChannelAlreadyExists(id);
        uint256 deposit = _receive(key.asset, amount);
        // slither-disable-next-line incorrect-equality -- rejects a deposit where nothing arrived; not a balance race
        if (deposit == 0) revert ChannelZeroAmount();
        if (deposit > ChannelLib.MAX_AMOUNT) revert ChannelAmountTooLarge(deposit, ChannelLib.MAX_AMOUNT);
        _channels[id] = ChannelLib.pack(ChannelStatus.Open, expiry, deposit, 0);
        emit ChannelOpened(id, key.payer, key.payee, key.asset, key.salt, deposit, expiry);
    }

    /// @inheritdoc IPaymentChannels
    function topUp(ChannelKey calldata key, uint256 amount, uint40 newExpiry) external payable nonReentrant {
        bytes32 id = ChannelLib.id(key);
        ChannelSlot w = _loadOpen(id);
        if (key.payer != msg.sender) revert ChannelUnauthorized(id, msg.sender);
        uint256 expiry = w.expiry();
        if (newExpiry != 0) {
            if (newExpiry < expiry) revert ChannelInvalidExpiry(newExpiry, expiry);
        } else {
            newExpiry = uint40(expiry);
        }
        uint256 added = (amount == 0 && msg.value == 0) ? 0 : _receive(key.asset, amount);
        // slither-disable-next-line incorrect-equality -- rejects a top-up that changes nothing; not a balance race
        if (added == 0 && newExpiry == expiry) revert ChannelNothingToChange(id);
        uint256 deposit = w.deposit() + added;
        if (deposit > ChannelLib.MAX_AMOUNT) revert ChannelAmountTooLarge(deposit, ChannelLib.MAX_AMOUNT);
        _channels[id] = ChannelLib.pack(ChannelStatus.Open, newExpiry, deposit, w.claimed());
        emit ChannelToppedUp(id, added, deposit, newExpiry);
    }

    /// @inheritdoc IPaymentChannels
    function claim(ChannelKey calldata key, uint256 amount, bytes calldata signature)
        external
        nonReentrant
        returns (uint256 paid)
    {
        bytes32 id;
        bytes memory failure;
        (id, paid, failure) = _claim(key, amount, signature, gasleft());
        if (failure.length != 0) _bubble(failure);
        _payCapped(key.asset, key.payee, paid);
    }

    /// @inheritdoc IPaymentChannels
    function claimMany(ChannelClaim[] calldata claims)
        external
        nonReentrant
        returns (uint256 succeeded, uint256 totalPaid)
    {
        // (payee, asset, pending) start as (0, 0, 0): the first flush pays 0, which _payCapped skips. Left to
        // default because an explicit `= 0` compiles to DUPs that cost 3 gas more than PUSH0s.
        // slither-disable-next-line uninitialized-local -- zero start is intended (see above)
        address payee;
        // slither-disable-next-line uninitialized-local -- zero start is intended (see above)
        address asset;
        // slither-disable-next-line uninitialized-local -- zero start is intended (see above)
        uint256 pending; // owed to (payee, asset) but not pushed yet
        for (uint256 i; i < claims.length; ++i) {
            ChannelClaim calldata c = claims[i];
            (bytes32 id, uint256 paid, bytes memory failure) = _claim(c.key, c.amount, c.signature, BATCH_SIG_GAS);
            if (failure.length != 0) {
                emit ChannelClaimSkipped(id, failure);
                continue;
            }
            ++succeeded;
            totalPaid += paid;
            if (c.key.payee != payee || c.key.asset != asset) {
                _payCapped(asset, payee, pending);
                (payee, asset, pending) = (c.key.payee, c.key.asset, 0);
            }
            pending += paid;
        }
        _payCapped(asset, payee, pending);
    }

    /// @inheritdoc IPaymentChannels
    function close(ChannelKey calldata key, uint256 amount, bytes calldata signature) external nonReentrant {
        bytes32 id = ChannelLib.id(key);
        ChannelSlot w = _loadOpen(id);
        if (msg.sender != key.payee) revert ChannelUnauthorized(id, msg.sender);
        _requireNotExpired(id, w);
        uint256 deposit = w.deposit();
        uint256 claimed = w.claimed();
        uint256 capped = amount < deposit ? amount : deposit;
        uint256 paid = 0;
        if (capped > claimed) {
            if (!_validSig(key.payer, _voucherDigest(id, amount), signature, gasleft())) {
                revert ChannelInvalidSignature(id, key.payer);
            }
            paid = capped - claimed;
            claimed = capped;
        }
        _settle(key, id, w, paid, claimed, false);
    }

    /// @inheritdoc IPaymentChannels
    function cooperativeClose(
        ChannelKey calldata key,
        uint256 amount,
        uint256 deadline,
        bytes calldata payerSignature,
        bytes calldata payeeSignature
    ) external nonReentrant {
        bytes32 id = ChannelLib.id(key);
        ChannelSlot w = _loadOpen(id);
        // A consent to close is only good until its deadline: a payee who signed a close and later takes a
        // higher voucher waits the deadline out first (its VoucherStore enforces that), so no old close can
        // be replayed below the latest voucher it holds.
        if (block.timestamp > deadline) revert ChannelCloseExpired(id, deadline, block.timestamp);
        bytes32 digest = _closeDigest(id, amount, deadline);
        if (msg.sender != key.payer && !_validSig(key.payer, digest, payerSignature, gasleft())) {
            revert ChannelInvalidSignature(id, key.payer);
        }
        if (msg.sender != key.payee && !_validSig(key.payee, digest, payeeSignature, gasleft())) {
            revert ChannelInvalidSignature(id, key.payee);
        }
        uint256 deposit = w.deposit();
        uint256 claimed = w.claimed();
        uint256 capped = amount < deposit ? amount : deposit;
        uint256 paid = 0;
        if (capped > claimed) {
            paid = capped - claimed;
            claimed = capped;
        }
        _settle(key, id, w, paid, claimed, true);
    }

    /// @inheritdoc IPaymentChannels
    function reclaim(ChannelKey calldata key) external nonReentrant returns (uint256 refunded) {
        bytes32 id = ChannelLib.id(key);
        ChannelSlot w = _loadOpen(id);
        uint256 expiry = w.expiry();
        if (block.timestamp <= expiry) revert ChannelNotExpired(id, expiry, block.timestamp);
        uint256 claimed = w.claimed();
        refunded = w.deposit() - claimed;
        _channels[id] = ChannelLib.pack(ChannelStatus.Reclaimed, expiry, w.deposit(), claimed);
        emit ChannelReclaimed(id, msg.sender, refunded, claimed);
        _payCapped(key.asset, key.payer, refunded);
    }

    // =============================================================================================
    // Views
    // =============================================================================================

    /// @inheritdoc IPaymentChannels
    function channelId(ChannelKey calldata key) external pure returns (bytes32) {
        return ChannelLib.id(key);
    }

    /// @inheritdoc IPaymentChannels
    function channel(bytes32 id)
        external
        view
        returns (ChannelStatus status, uint256 deposit, uint256 claimed, uint256 expiry)
    {
        ChannelSlot w = _channels[id];
        return (w.status(), w.deposit(), w.claimed(), w.expiry());
    }

    /// @inheritdoc IPaymentChannels
    function voucherDigest(bytes32 id, uint256 amount) external view returns (bytes32) {
        return _voucherDigest(id, amount);
    }

    /// @inheritdoc IPaymentChannels
    function closeDigest(bytes32 id, uint256 amount, uint256 deadline) external view returns (bytes32) {
        return _closeDigest(id, amount, deadline);
    }

    /// @inheritdoc IPaymentChannels
    function creditTotal(address asset) external view returns (uint256) {
        return _creditTotals[asset];
    }

    /// @notice The EIP-712 domain separator (chain id and this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // =============================================================================================
    // Internals
    // =============================================================================================

    /// @dev Check and record a voucher; returns the encoded error instead of reverting, so `claimMany` can
    /// skip the item. The payout itself is left to the caller.
    function _claim(ChannelKey calldata key, uint256 amount, bytes calldata signature, uint256 sigGas)
        private
        returns (bytes32 id, uint256 paid, bytes memory failure)
    {
        id = ChannelLib.id(key);
        ChannelSlot w = _channels[id];
        failure = _claimable(id, w, amount);
        if (failure.length != 0) return (id, 0, failure);
        if (!_validSig(key.payer, _voucherDigest(id, amount), signature, sigGas)) {
            return (id, 0, abi.encodeWithSelector(ChannelInvalidSignature.selector, id, key.payer));
        }
        uint256 deposit = w.deposit();
        uint256 capped = amount < deposit ? amount : deposit;
        paid = capped - w.claimed();
        // the one setter written inline: as a ChannelLib function the legacy optimizer keeps it a jump (+3 gas a claim)
        _channels[id] = ChannelSlot.wrap((ChannelSlot.unwrap(w) & ((1 << 152) - 1)) | (capped << 152));
        emit ChannelClaimed(id, paid, capped);
    }

    /// @dev Empty when a voucher for `amount` would pay something now; the encoded error otherwise.
    function _claimable(bytes32 id, ChannelSlot w, uint256 amount) private view returns (bytes memory) {
        ChannelStatus status = w.status();
        if (status != ChannelStatus.Open) return abi.encodeWithSelector(ChannelNotOpen.selector, id, status);
        uint256 expiry = w.expiry();
        if (block.timestamp > expiry) {
            return abi.encodeWithSelector(ChannelExpired.selector, id, expiry, block.timestamp);
        }
        uint256 deposit = w.deposit();
        uint256 capped = amount < deposit ? amount : deposit;
        uint256 claimed = w.claimed();
        if (capped <= claimed) return abi.encodeWithSelector(ChannelNothingToClaim.selector, id, capped, claimed);
        return "";
    }

    /// @dev Final state, event, then the payouts (payee first, payer the rest).
    function _settle(ChannelKey calldata key, bytes32 id, ChannelSlot w, uint256 paid, uint256 claimed, bool coop)
        private
    {
        uint256 deposit = w.deposit();
        uint256 refunded = deposit - claimed;
        _channels[id] = ChannelLib.pack(ChannelStatus.Closed, w.expiry(), deposit, claimed);
        emit ChannelClosed(id, paid, refunded, claimed, coop);
        _payCapped(key.asset, key.payee, paid);
        _payCapped(key.asset, key.payer, refunded);
    }

    function _loadOpen(bytes32 id) private view returns (ChannelSlot w) {
        w = _channels[id];
        ChannelStatus status = w.status();
        if (status != ChannelStatus.Open) revert ChannelNotOpen(id, status);
    }

    function _requireNotExpired(bytes32 id, ChannelSlot w) private view {
        uint256 expiry = w.expiry();
        if (block.timestamp > expiry) revert ChannelExpired(id, expiry, block.timestamp);
    }

    function _voucherDigest(bytes32 id, uint256 amount) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, id, amount)));
    }

    function _closeDigest(bytes32 id, uint256 amount, uint256 deadline) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CLOSE_TYPEHASH, id, amount, deadline)));
    }

    /// @dev Low-s 65-byte ECDSA by `signer`, else ERC-1271 approval by the `signer` contract, whose
    /// `isValidSignature` runs with at most `gasCap` gas and whose answer is read as one word (no return
    /// bomb). OpenZeppelin's SignatureChecker forwards all gas and copies all returndata, which let one
    /// hostile payer sink a whole `claimMany`.
    function _validSig(address signer, bytes32 digest, bytes calldata signature, uint256 gasCap)
        private
        view
        returns (bool ok)
    {
        if (signature.length == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                s := calldataload(add(signature.offset, 0x20))
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
            // slither-disable-next-line unused-return -- err is checked; errorArg only echoes the bad s value
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        }
        if (signer.code.length == 0) return false;
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bytes4 magic = IERC1271.isValidSignature.selector;
        assembly ("memory-safe") {
            let success := staticcall(gasCap, signer, add(data, 0x20), mload(data), 0, 0x20)
            ok := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0), magic)))
        }
    }

    /// @dev Take a deposit: ETH from `msg.value` (must equal `amount`), ERC-20 pulled from the sender,
    /// measured and booked (refused while the contract holds less of it than its books: `AssetDeficit`);
    /// returns what actually arrived.
    function _receive(address asset, uint256 amount) private returns (uint256) {
        if (asset == address(0)) {
            if (msg.value != amount) revert ChannelWrongValue(amount, msg.value);
            return amount;
        }
        if (msg.value != 0) revert ChannelWrongValue(0, msg.value);
        return _pullBooked(asset, amount);
    }

    function _bubble(bytes memory failure) private pure {
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }
}

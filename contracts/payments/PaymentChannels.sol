// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";

import {IPaymentChannels} from "../interfaces/IPaymentChannels.sol";
import {ChannelKey, ChannelStatus, ChannelClaim, ChannelLib} from "../libraries/ChannelTypes.sol";

/// @title PaymentChannels
/// @notice See {IPaymentChannels}. One storage word per channel (status, expiry, deposit, claimed; see
/// {ChannelLib}); the immutable key travels in calldata and hashes to the channel id. No admin.
contract PaymentChannels is IPaymentChannels, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ChannelLib for uint256;
    // No code: Slither 0.11 merges inherited `using X for *` by key, so EIP712's `ShortStrings for *`
    // hides ReentrancyGuardTransient's `TransientSlot for *`; without this line it cannot build IR
    // for the guard and silently skips SSA (and every reentrancy detector) for this whole contract.
    using TransientSlot for *;

    /// @notice Gas forwarded to an ETH payout receiver; a receiver needing more is credited instead.
    uint256 public constant PAYOUT_GAS = 30_000;
    /// @notice Gas forwarded to an ERC-20 `transfer` payout; a token needing more is credited instead
    /// (withdrawals forward all gas).
    uint256 public constant TOKEN_PAYOUT_GAS = 100_000;
    /// @notice Gas an ERC-1271 payer's `isValidSignature` gets in a `claimMany` item (a wallet needing more
    /// is skipped there and claims alone, where it gets all the gas).
    uint256 public constant BATCH_SIG_GAS = 50_000;
    /// @notice keccak256("Voucher(bytes32 channelId,uint256 amount)")
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 amount)");
    /// @notice keccak256("CooperativeClose(bytes32 channelId,uint256 amount,uint256 deadline)")
    bytes32 public constant CLOSE_TYPEHASH =
        keccak256("CooperativeClose(bytes32 channelId,uint256 amount,uint256 deadline)");

    mapping(bytes32 channelId => uint256 packed) private _channels;
    mapping(address account => mapping(address asset => uint256)) private _credits;
    mapping(address asset => uint256) private _creditTotals;

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
        // slither-disable-next-line timestamp -- only rejects an expiry already past; seconds of skew are harmless
        if (expiry <= block.timestamp) revert ChannelInvalidExpiry(expiry, block.timestamp + 1);
        if (_channels[id] != 0) revert ChannelAlreadyExists(id);
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
        uint256 w = _loadOpen(id);
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
        // slither-disable-next-line timestamp -- non-empty means an encoded error; the time is payload
        if (failure.length != 0) _bubble(failure);
        _pay(key.asset, key.payee, paid);
    }

    /// @inheritdoc IPaymentChannels
    function claimMany(ChannelClaim[] calldata claims)
        external
        nonReentrant
        returns (uint256 succeeded, uint256 totalPaid)
    {
        // (payee, asset, pending) start as (0, 0, 0): the first flush pays 0, which _pay skips. Left to
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
            // slither-disable-next-line timestamp -- non-empty means an encoded error; the time is payload
            if (failure.length != 0) {
                emit ChannelClaimSkipped(id, failure);
                continue;
            }
            ++succeeded;
            totalPaid += paid;
            if (c.key.payee != payee || c.key.asset != asset) {
                _pay(asset, payee, pending);
                (payee, asset, pending) = (c.key.payee, c.key.asset, 0);
            }
            pending += paid;
        }
        _pay(asset, payee, pending);
    }

    /// @inheritdoc IPaymentChannels
    function close(ChannelKey calldata key, uint256 amount, bytes calldata signature) external nonReentrant {
        bytes32 id = ChannelLib.id(key);
        uint256 w = _loadOpen(id);
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
        uint256 w = _loadOpen(id);
        // A consent to close is only good until its deadline: a payee who signed a close and later takes a
        // higher voucher waits the deadline out first (its VoucherStore enforces that), so no old close can
        // be replayed below the latest voucher it holds.
        // slither-disable-next-line timestamp -- signature deadline by design; seconds of skew are harmless
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
        uint256 w = _loadOpen(id);
        uint256 expiry = w.expiry();
        // slither-disable-next-line timestamp -- expiry is the payer's exit deadline; seconds of skew are harmless
        if (block.timestamp <= expiry) revert ChannelNotExpired(id, expiry, block.timestamp);
        uint256 claimed = w.claimed();
        refunded = w.deposit() - claimed;
        _channels[id] = ChannelLib.pack(ChannelStatus.Reclaimed, expiry, w.deposit(), claimed);
        emit ChannelReclaimed(id, msg.sender, refunded, claimed);
        _pay(key.asset, key.payer, refunded);
    }

    // =============================================================================================
    // Credits
    // =============================================================================================

    /// @inheritdoc IPaymentChannels
    function withdraw(address asset) external nonReentrant returns (uint256) {
        return _withdraw(asset, msg.sender);
    }

    /// @inheritdoc IPaymentChannels
    function withdrawTo(address asset, address to) external nonReentrant returns (uint256) {
        return _withdraw(asset, to);
    }

    function _withdraw(address asset, address to) private returns (uint256 amount) {
        amount = _credits[msg.sender][asset];
        if (amount == 0) revert ChannelNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        _creditTotals[asset] -= amount;
        emit Withdrawn(msg.sender, asset, to, amount);
        bool ok;
        if (asset == address(0)) {
            // slither-disable-next-line assembly -- ETH send that copies no returndata (no return bomb)
            assembly ("memory-safe") {
                ok := call(gas(), to, amount, 0, 0, 0, 0)
            }
        } else {
            ok = IERC20(asset).trySafeTransfer(to, amount);
        }
        if (!ok) revert ChannelTransferFailed(asset, to, amount);
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
        uint256 w = _channels[id];
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
    function creditOf(address account, address asset) external view returns (uint256) {
        return _credits[account][asset];
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
        uint256 w = _channels[id];
        failure = _claimable(id, w, amount);
        // slither-disable-next-line timestamp -- non-empty means an encoded error; the time is payload
        if (failure.length != 0) return (id, 0, failure);
        if (!_validSig(key.payer, _voucherDigest(id, amount), signature, sigGas)) {
            return (id, 0, abi.encodeWithSelector(ChannelInvalidSignature.selector, id, key.payer));
        }
        uint256 deposit = w.deposit();
        uint256 capped = amount < deposit ? amount : deposit;
        paid = capped - w.claimed();
        _channels[id] = (w & ((1 << 152) - 1)) | (capped << 152);
        emit ChannelClaimed(id, paid, capped);
    }

    /// @dev Empty when a voucher for `amount` would pay something now; the encoded error otherwise.
    function _claimable(bytes32 id, uint256 w, uint256 amount) private view returns (bytes memory) {
        ChannelStatus status = w.status();
        if (status != ChannelStatus.Open) return abi.encodeWithSelector(ChannelNotOpen.selector, id, status);
        uint256 expiry = w.expiry();
        // slither-disable-next-line timestamp -- vouchers are redeemable until expiry; seconds of skew are harmless
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
    function _settle(ChannelKey calldata key, bytes32 id, uint256 w, uint256 paid, uint256 claimed, bool coop)
        private
    {
        uint256 deposit = w.deposit();
        uint256 refunded = deposit - claimed;
        _channels[id] = ChannelLib.pack(ChannelStatus.Closed, w.expiry(), deposit, claimed);
        emit ChannelClosed(id, paid, refunded, claimed, coop);
        _pay(key.asset, key.payee, paid);
        _pay(key.asset, key.payer, refunded);
    }

    function _loadOpen(bytes32 id) private view returns (uint256 w) {
        w = _channels[id];
        ChannelStatus status = w.status();
        if (status != ChannelStatus.Open) revert ChannelNotOpen(id, status);
    }

    function _requireNotExpired(bytes32 id, uint256 w) private view {
        uint256 expiry = w.expiry();
        // slither-disable-next-line timestamp -- vouchers are redeemable until expiry; seconds of skew are harmless
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
            // slither-disable-next-line assembly -- r, s, v straight from calldata (no copy to memory)
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
        // slither-disable-next-line assembly -- gas-capped staticcall reading one word of returndata
        assembly ("memory-safe") {
            let success := staticcall(gasCap, signer, add(data, 0x20), mload(data), 0, 0x20)
            ok := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0), magic)))
        }
    }

    /// @dev ERC-20 `transfer` with TOKEN_PAYOUT_GAS, OpenZeppelin's success rule (no return value from a
    /// contract, or `true`), one word of returndata read.
    function _tryTransfer(address token, address to, uint256 value) private returns (bool ok) {
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, value));
        // slither-disable-next-line assembly -- gas-capped token call reading one word of returndata
        assembly ("memory-safe") {
            let success := call(TOKEN_PAYOUT_GAS, token, 0, add(data, 0x20), mload(data), 0, 0x20)
            switch returndatasize()
            case 0 { ok := and(success, gt(extcodesize(token), 0)) }
            default { ok := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0), 1))) }
        }
    }

    /// @dev Take a deposit: ETH from `msg.value` (must equal `amount`), ERC-20 pulled from the sender;
    /// returns what actually arrived.
    function _receive(address asset, uint256 amount) private returns (uint256) {
        if (asset == address(0)) {
            if (msg.value != amount) revert ChannelWrongValue(amount, msg.value);
            return amount;
        }
        if (msg.value != 0) revert ChannelWrongValue(0, msg.value);
        uint256 before = IERC20(asset).balanceOf(address(this));
        IERC20(asset).safeTransferFrom(msg.sender, address(this), amount);
        return IERC20(asset).balanceOf(address(this)) - before;
    }

    /// @dev Push a payout; if the receiver refuses it (revert, out of gas, token failure) credit it instead.
    function _pay(address asset, address to, uint256 value) private {
        // slither-disable-next-line incorrect-equality,timestamp -- a zero payout is skipped; nothing to manipulate
        if (value == 0) return;
        bool ok;
        if (asset == address(0)) {
            // The receiver must really get PAYOUT_GAS (63/64 rule), so no caller can pick a gas limit
            // that makes a contract receiver fail on purpose.
            if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + 12_000) revert ChannelInsufficientGas(gasleft());
            // slither-disable-next-line assembly -- fixed-gas ETH push that copies no returndata (no return bomb)
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, value, 0, 0, 0, 0)
            }
        } else {
            // as for ETH: the token call must really get TOKEN_PAYOUT_GAS
            if (gasleft() < TOKEN_PAYOUT_GAS + TOKEN_PAYOUT_GAS / 63 + 12_000) {
                revert ChannelInsufficientGas(gasleft());
            }
            ok = _tryTransfer(asset, to, value);
        }
        if (!ok) {
            _credits[to][asset] += value;
            _creditTotals[asset] += value;
            emit PayoutCredited(to, asset, value);
        }
    }

    function _bubble(bytes memory failure) private pure {
        // slither-disable-next-line assembly -- re-raises a claim failure already ABI-encoded as a custom error
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }
}

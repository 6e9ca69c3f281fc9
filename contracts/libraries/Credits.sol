// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ICredits} from "../interfaces/ICredits.sol";
import {Asset} from "./Asset.sol";

/// @title Credits
/// @notice Base of every contract that holds coins for others and pays them out: push a payout with a gas
/// stipend, and credit it when the push fails; per-asset credit totals make solvency checkable (balance ==
/// locked + credits [+ fees]). Adopt it by inheriting (`contract X is IX, Credits`, IX extending
/// {ICredits}), paying with `_pay` and booking with `_credit`; `withdraw`, `withdrawTo`, `withdrawPart` and
/// `creditOf` come with it.
///
/// Books (issue 12, point 6: no token behaviour moves one user's loss onto another): every ERC-20 coin held
/// for others is on the books of its asset (`_owed`). Money comes in through `_pullBooked`, which refuses an
/// asset whose balance is below its books (`AssetDeficit`: a negative rebase, a sender tax), and leaves
/// through `_payOut`/`_payCapped`/`_sendOut`/`_withdraw`, each of which pays held / owed of its claim
/// (`_share`): while the balance is off the books (a rebase down or up), every position takes the same
/// share of the loss or the gain, whatever the order in which they leave. ETH is not booked (nothing but a
/// payout takes ETH from a contract), so ETH paths pay no gas for it. AgentEscrow keeps its books in its own
/// packed word (`_owed`, `_book`, `_unbook` overridden).
///
/// Variants, declared here next to the defaults so the differences stay in one file (unused variants add no
/// bytecode to other heirs): `_payCapped` caps the gas of an ERC-20 payout `transfer` (batch entry points:
/// one hostile token must not sink the batch; PaymentChannels), and {UntotalledCredits} keeps no per-asset
/// credit total (the auctions and the call market: no on-chain solvency view, and a second storage write
/// per outbid or processed order would break their gas budgets).
abstract contract Credits is ICredits, ReentrancyGuardTransient {
    /// @notice Gas forwarded to an ETH payout receiver; a receiver needing more is credited instead.
    uint256 public constant PAYOUT_GAS = 30_000;
    /// @dev Gas an ERC-20 `transfer` gets in `_payCapped` (a constant, not a parameter: saves the stack
    /// work on every payout). PaymentChannels publishes it as TOKEN_PAYOUT_GAS.
    uint256 internal constant CAPPED_TOKEN_GAS = 100_000;

    mapping(address account => mapping(address asset => uint256)) internal _credits;
    // slither-disable-next-line unused-state -- real and accepted: UntotalledCredits heirs keep no totals
    mapping(address asset => uint256) internal _creditTotals;
    /// @dev The books of each ERC-20 asset: what this contract holds for others (deposits, bonds, bids not
    /// paid out yet, credits). ETH is not booked: nothing but a payout takes ETH from a contract. An heir that
    /// keeps its books elsewhere overrides `_owed`, `_book` and `_unbook` (AgentEscrow packs them with fees).
    // slither-disable-next-line unused-state -- AgentEscrow keeps its books in its own packed word
    mapping(address asset => uint256) internal _books;
    /// @dev Base of the transient per-asset slots of payouts taken off the books and not sent yet (see
    /// `_share`): keccak256("agentmarket.Credits.pendingPayouts").
    uint256 private constant _PENDING = 0x42af011154c77514b77e0b9c210e4dce1a97ed200bb74fb8cb96ba3f47964d91;

    /// @inheritdoc ICredits
    function withdraw(address asset) external nonReentrant returns (uint256) {
        return _withdraw(asset, msg.sender, type(uint256).max);
    }

    /// @inheritdoc ICredits
    function withdrawTo(address asset, address to) external nonReentrant returns (uint256) {
        return _withdraw(asset, to, type(uint256).max);
    }

    /// @inheritdoc ICredits
    function withdrawPart(address asset, address to, uint256 amount) external nonReentrant returns (uint256) {
        return _withdraw(asset, to, amount);
    }

    /// @inheritdoc ICredits
    function creditOf(address account, address asset) external view returns (uint256) {
        return _credits[account][asset];
    }

    /// @inheritdoc ICredits
    function pushMeasured(address asset, address to, uint256 value, uint256 maxTaken, uint256 gasCap)
        external
        returns (uint256 taken)
    {
        if (msg.sender != address(this)) revert CreditsOnlySelf(msg.sender);
        Asset a = Asset.wrap(asset);
        uint256 before = a.selfBalance();
        if (!a.tryTransferCapped(to, value, gasCap)) revert CreditsTransferFailed(asset, to, value);
        uint256 held = a.selfBalance();
        if (held < before) taken = before - held; // a receiver hook may pay in: then nothing was over-charged
        if (taken > maxTaken) revert CreditsSenderTax(asset, value, taken);
    }

    /// @dev Send `part` of the caller's credit (all of it when `part` exceeds it) to `to`; the credit pays for
    /// whatever leaves this contract (a sender tax included, up to the whole credit), and what does not leave
    /// stays the caller's credit. While this contract holds other than its books of an ERC-20 (a rebase),
    /// every claim is paid the same share, held / owed (issue 12, point 6: no user's loss, nor gain, moves
    /// onto another): `part` of the credit sends its share, and the credit is charged by what left scaled
    /// back. Returns what left.
    function _withdraw(address asset, address to, uint256 part) internal returns (uint256 sent) {
        uint256 credit = _credits[msg.sender][asset];
        if (credit == 0) revert CreditsNothingToWithdraw(msg.sender, asset);
        _credits[msg.sender][asset] = 0;
        _untotal(asset, credit);
        uint256 claim = part < credit ? part : credit;
        uint256 owed = 0; // ETH: 0 == held, the full branch
        uint256 held = 0;
        if (asset != address(0)) {
            owed = _owed(asset); // this credit included
            held = Asset.wrap(asset).selfBalance();
        }
        _unbook(asset, credit);
        // slither-disable-next-line incorrect-equality -- a balance against the books: equal pays the claim, any difference its share
        if (held == owed) {
            sent = _send(asset, to, claim, credit);
            emit Withdrawn(msg.sender, asset, to, sent);
            if (sent < credit) _credit(msg.sender, asset, credit - sent);
            return sent;
        }
        sent = _send(asset, to, claim * held / owed, credit * held / owed);
        emit Withdrawn(msg.sender, asset, to, sent);
        uint256 used = Math.mulDiv(sent, owed, held, Math.Rounding.Ceil);
        if (used < credit) _credit(msg.sender, asset, credit - used);
    }

    /// @dev `_send` where the owner of `value` has exactly `value` to spend.
    function _send(address asset, address to, uint256 value) internal returns (uint256) {
        return _send(asset, to, value, value);
    }

    /// @dev Send or revert (withdrawals, fee collection, funding the escrow: the caller chose the receiver).
    /// ERC-20 transfers are measured: what leaves this contract never exceeds `budget` (>= `value`), the coins
    /// of whoever is paid. A token that taxes the sender on top of the transfer beyond the budget is sent
    /// `value` less the excess it tried to take, once, so the owner pays its own tax and nobody else (when
    /// the token cannot even attempt the full transfer, `withdrawPart` names a smaller amount). Returns what
    /// left (at most `budget`).
    function _send(address asset, address to, uint256 value, uint256 budget) internal returns (uint256 sent) {
        if (asset == address(0)) {
            if (!Asset.wrap(asset).tryPushAll(to, value)) revert CreditsTransferFailed(asset, to, value);
            return value;
        }
        bool ok;
        (ok, sent) = _pushMeasured(asset, to, value, budget, type(uint256).max);
        if (ok) return sent;
        if (sent > budget && sent - budget < value) {
            uint256 net = value - (sent - budget);
            (ok, sent) = _pushMeasured(asset, to, net, budget, type(uint256).max);
            if (ok) return sent;
            if (sent != 0) revert CreditsSenderTax(asset, net, sent);
        }
        revert CreditsTransferFailed(asset, to, value);
    }

    /// @dev Transfer `value` of the ERC-20 `asset` to `to` through `pushMeasured` (its own call frame: a
    /// transfer that takes more than `maxTaken` from this contract is undone alone). `ok`: the transfer
    /// stands, and `taken` (at most `maxTaken`) left this contract; otherwise `taken` is what the token tried to take when it over-charged,
    /// else 0. No returndata beyond 100 bytes (all of it this contract's own) is copied.
    function _pushMeasured(address asset, address to, uint256 value, uint256 maxTaken, uint256 gasCap)
        internal
        returns (bool ok, uint256 taken)
    {
        bytes4 push = this.pushMeasured.selector;
        bytes4 senderTax = CreditsSenderTax.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, push)
            mstore(add(p, 0x04), asset)
            mstore(add(p, 0x24), to)
            mstore(add(p, 0x44), value)
            mstore(add(p, 0x64), maxTaken)
            mstore(add(p, 0x84), gasCap)
            ok := call(gas(), address(), 0, p, 0xa4, 0, 0)
            switch ok
            case 1 {
                returndatacopy(0, 0, 0x20)
                taken := mload(0)
            }
            default {
                if eq(returndatasize(), 0x64) {
                    returndatacopy(p, 0, 0x64)
                    if eq(shr(224, mload(p)), shr(224, senderTax)) { taken := mload(add(p, 0x44)) }
                }
            }
        }
    }

    /// @dev Push a payout; if the receiver refuses it (revert, out of gas, token failure) credit it instead.
    function _pay(address asset, address to, uint256 value) internal {
        // slither-disable-next-line incorrect-equality -- skips exactly-zero payouts (an amount)
        if (value == 0) return;
        bool ok;
        if (asset == address(0)) {
            // Make sure the receiver really gets PAYOUT_GAS (63/64 rule), so a caller cannot pick a gas limit
            // that makes a contract receiver fail on purpose.
            if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + 12_000) revert CreditsInsufficientGas(gasleft());
            // AssetLib.tryCallValue inlined by hand: the legacy optimizer keeps it a jump, ~50 gas per payout
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, value, 0, 0, 0, 0)
            }
        } else {
            // measured: a payout the token over-charges (sender tax) is undone and credited instead
            uint256 out = _share(asset, value);
            (ok,) = _pushMeasured(asset, to, out, out, type(uint256).max);
        }
        if (!ok) _credit(to, asset, value); // the claim stays whole: its share is taken when it is withdrawn
    }

    /// @dev What a payout of `value` in the ERC-20 `asset`, already taken off the books, sends: held / owed of
    /// it (all of it while the books match the balance). A payout noted as pending (`_notePending`: a
    /// settlement that takes several payouts off the books in one write) adds the pending payouts back to
    /// the books, so every payout of the settlement gets the share held before it, whatever their order; a
    /// payout nobody noted (taken off the books just before, as `_payOut` does) counts as pending itself.
    function _share(address asset, uint256 value) internal returns (uint256) {
        uint256 slot = _pendingSlot(asset);
        uint256 pending;
        assembly ("memory-safe") {
            pending := tload(slot)
        }
        if (pending < value) pending = value;
        assembly ("memory-safe") {
            tstore(slot, sub(pending, value))
        }
        uint256 owed = _owed(asset) + pending;
        uint256 held = Asset.wrap(asset).selfBalance();
        // slither-disable-next-line incorrect-equality -- a balance against the books: equal pays the claim, any difference its share
        return held == owed ? value : value * held / owed;
    }

    /// @dev Note `value` of the ERC-20 `asset` as taken off the books for payouts that follow (see `_share`).
    function _notePending(address asset, uint256 value) internal {
        uint256 slot = _pendingSlot(asset);
        assembly ("memory-safe") {
            tstore(slot, add(tload(slot), value))
        }
    }

    /// @dev Transient slot of the payouts taken off the books of `asset` and not sent yet.
    function _pendingSlot(address asset) private pure returns (uint256 slot) {
        assembly ("memory-safe") {
            mstore(0x00, asset)
            mstore(0x20, _PENDING)
            slot := keccak256(0x00, 0x40)
        }
    }

    /// @dev Book `value` of `asset` as a withdrawable credit of `to` (the credit stays on the books).
    function _credit(address to, address asset, uint256 value) internal virtual {
        _credits[to][asset] += value;
        _creditTotals[asset] += value;
        _book(asset, value);
        emit PayoutCredited(to, asset, value);
    }

    /// @dev Take a withdrawn credit of `value` out of the credit totals (an heir without totals: nothing).
    function _untotal(address asset, uint256 value) internal virtual {
        _creditTotals[asset] -= value;
    }

    // ---------------------------------------------------------------------------------------------
    // Books
    // ---------------------------------------------------------------------------------------------

    /// @dev What the books say this contract holds of `asset` for others.
    function _owed(address asset) internal view virtual returns (uint256) {
        return _books[asset];
    }

    /// @dev Add `value` to the books of `asset` (ERC-20 only here).
    function _book(address asset, uint256 value) internal virtual {
        if (asset != address(0)) _books[asset] += value;
    }

    /// @dev Take `value` off the books of `asset` (ERC-20 only here).
    function _unbook(address asset, uint256 value) internal virtual {
        if (asset != address(0)) _books[asset] -= value;
    }

    /// @dev Pull `value` of the ERC-20 `asset` from the caller and book what arrived; refused
    /// (`AssetDeficit`) while this contract holds less of it than its books say, so a newcomer's coins
    /// never pay the loss of the positions that held the token when it happened.
    function _pullBooked(address asset, uint256 value) internal returns (uint256 received) {
        received = Asset.wrap(asset).pullMeasured(msg.sender, value, _owed(asset));
        _book(asset, received);
    }

    /// @dev `_pay` of a claim still on the books: takes it off them first (its share is paid, see `_share`).
    function _payOut(address asset, address to, uint256 value) internal {
        if (asset != address(0)) _unbook(asset, value); // checked here too: saves ETH payouts the jump
        _pay(asset, to, value);
    }

    /// @dev `_send` (or revert) of a claim still on the books: its share leaves. Returns what left.
    function _sendOut(address asset, address to, uint256 value) internal returns (uint256) {
        if (asset == address(0)) return _send(asset, to, value);
        _unbook(asset, value);
        return _send(asset, to, _share(asset, value));
    }

    // ---------------------------------------------------------------------------------------------
    // Variants (see the contract notice)
    // ---------------------------------------------------------------------------------------------

    /// @dev `_payOut` whose ERC-20 leg forwards exactly CAPPED_TOKEN_GAS and reads one word of returndata (the
    /// 63/64 rule checked as for ETH, so no caller can starve the token call on purpose). Like `_payOut`, it
    /// pays a claim still on the books (takes it off them, pays its share).
    function _payCapped(address asset, address to, uint256 value) internal {
        // slither-disable-next-line incorrect-equality -- skips exactly-zero payouts (an amount)
        if (value == 0) return;
        bool ok;
        if (asset == address(0)) {
            if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + 12_000) revert CreditsInsufficientGas(gasleft());
            // AssetLib.tryCallValue inlined by hand: the legacy optimizer keeps it a jump, ~50 gas per payout
            assembly ("memory-safe") {
                ok := call(PAYOUT_GAS, to, value, 0, 0, 0, 0)
            }
        } else {
            // two 63/64 cuts (the measuring frame, then the token call) and two balance reads before the cap
            if (gasleft() < CAPPED_TOKEN_GAS + CAPPED_TOKEN_GAS / 31 + 20_000) {
                revert CreditsInsufficientGas(gasleft());
            }
            _unbook(asset, value); // in the ERC-20 leg: ETH payouts pay nothing for the books
            uint256 out = _share(asset, value);
            (ok,) = _pushMeasured(asset, to, out, out, CAPPED_TOKEN_GAS);
        }
        if (!ok) _credit(to, asset, value);
    }

    /// @dev `_credit` of a claim that is on the books already (it becomes a credit, nothing is booked), without
    /// the per-asset credit total (the auctions: an outbid's second storage write would break the 60k bid
    /// budget; their `_untotal` is empty to match).
    function _creditHeld(address to, address asset, uint256 value) internal {
        _credits[to][asset] += value;
        emit PayoutCredited(to, asset, value);
    }
}

/// @title UntotalledCredits
/// @notice {Credits} without the per-asset credit totals, for contracts that move many locks into credits
/// (the auctions' outbids, the call market's processed orders) where a second storage write per move would
/// break their gas budgets; they have no on-chain solvency view (their books still cover every credit).
abstract contract UntotalledCredits is Credits {
    /// @dev A payout that could not be pushed goes back on the books as a credit (no total).
    function _credit(address to, address asset, uint256 value) internal override {
        _creditHeld(to, asset, value);
        _book(asset, value);
    }

    /// @dev No totals to take a withdrawal out of.
    function _untotal(address, uint256) internal override {}
}

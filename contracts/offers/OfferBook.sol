// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";

import {IAgentEscrow} from "../interfaces/IAgentEscrow.sol";
import {IOfferBook} from "../interfaces/IOfferBook.sol";
import {Deal, DealLib, DealState} from "../libraries/EscrowTypes.sol";
import {Offer, OfferLib, Side} from "../libraries/OfferTypes.sol";

/// @title OfferBook
/// @notice See {IOfferBook}. One storage word per posted offer digest (the posted flag), read by every fill
/// and written by none; one per maker (ETH deposit, counter and the counter's cancel slots), read by every
/// fill and written by cancels. A fill's once-only record is the escrow deal it opens, keyed by (offer
/// digest, start unit): see {fillAfter}.
/// The contract has no owner and no admin functions.
contract OfferBook is IOfferBook, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    // No code: Slither 0.11 merges inherited `using X for *` by key, so EIP712's `ShortStrings for *`
    // hides ReentrancyGuardTransient's `TransientSlot for *`; without this line it cannot build IR
    // for the guard and silently skips SSA (and every reentrancy detector) for this whole contract.
    using TransientSlot for *;

    uint256 private constant BPS = 10_000;
    /// @notice Gas each `fillMany` item runs with at most (a fill with an ERC-1271 maker and two token
    /// pulls uses about a third of it).
    uint256 public constant FILL_ITEM_GAS = 300_000;
    /// @dev Bytes of a skipped item's revert data kept for `FillSkipped` (a selector and 7 words).
    uint256 private constant MAX_REASON = 4 + 7 * 32;

    /// @dev A maker's ETH deposit, counter and cancel slots, packed in one word (every fill reads it for the
    /// counter, so the cancel check costs a fill a shift and a mask, and a cancel rewrites a word that
    /// exists). 96 bits hold more wei than exist; 2^32 counter bumps cost more gas than a chain has.
    struct Account {
        uint96 balance;
        uint32 counter;
        /// bit s set: the maker cancelled slot s (see {OfferLib-cancelSlot}) of its current counter; every
        /// offer of that counter in slot s is dead. `incrementCounter` clears it with the counter bump.
        uint128 cancelled;
    }

    /// @inheritdoc IOfferBook
    address public immutable escrow;

    mapping(bytes32 offerHash => uint256 status) private _status;
    mapping(address account => Account) private _accounts;

    constructor(address escrow_) EIP712("AgentMarket OfferBook", "1") {
        if (escrow_.code.length == 0) revert OfferInvalidEscrow(escrow_);
        escrow = escrow_;
    }

    // =============================================================================================
    // Filling
    // =============================================================================================

    /// @inheritdoc IOfferBook
    function fill(Offer calldata offer, bytes calldata signature, uint256 quantity)
        external
        payable
        nonReentrant
        returns (uint256 dealId)
    {
        return _fill(offer, signature, 0, quantity, msg.sender, msg.value);
    }

    /// @inheritdoc IOfferBook
    function fillAfter(Offer calldata offer, bytes calldata signature, uint256 quantity, FillLink calldata prev)
        external
        payable
        nonReentrant
        returns (uint256 dealId)
    {
        return _fill(offer, signature, _linkEnd(offer, prev), quantity, msg.sender, msg.value);
    }

    /// @inheritdoc IOfferBook
    function fillMany(FillItem[] calldata items) external payable nonReentrant returns (uint256[] memory dealIds) {
        dealIds = new uint256[](items.length);
        uint256 budget = msg.value;
        for (uint256 i; i < items.length; ++i) {
            FillItem calldata item = items[i];
            uint256 value = _takerEthLeg(item.offer, item.quantity);
            if (value > budget) {
                emit FillSkipped(
                    i, _digest(item.offer), abi.encodeWithSelector(OfferWrongValue.selector, value, budget)
                );
                continue;
            }
            // Each item gets FILL_ITEM_GAS and no more, so a maker's ERC-1271 check or a token that burns
            // gas costs the batch at most that; the guard makes the cap real (63/64 rule), so the caller's
            // gas limit cannot decide which items fail.
            if (gasleft() < FILL_ITEM_GAS + FILL_ITEM_GAS / 63 + 20_000) revert OfferInsufficientGas(gasleft());
            // slither-disable-next-line calls-loop -- self-call: a failing item is skipped, not the batch
            try this.fillItem{value: value, gas: FILL_ITEM_GAS}(
                item.offer, item.signature, item.quantity, item.prev, msg.sender
            ) returns (uint256 id) {
                dealIds[i] = id;
                budget -= value;
            } catch {
                // bare catch: the revert data is not copied whole (a return bomb would cost the batch)
                emit FillSkipped(i, _digest(item.offer), _boundedReturndata());
            }
        }
        if (budget != 0) {
            // slither-disable-next-line low-level-calls,reentrancy-benign -- nonReentrant refund; credited if refused
            (bool ok,) = msg.sender.call{value: budget}("");
            if (!ok) _credit(msg.sender, msg.sender, budget);
        }
    }

    /// @inheritdoc IOfferBook
    function fillItem(
        Offer calldata offer,
        bytes calldata signature,
        uint256 quantity,
        FillLink calldata prev,
        address taker
    ) external payable returns (uint256 dealId) {
        if (msg.sender != address(this)) revert OfferOnlySelf(msg.sender);
        uint256 start = prev.quantity == 0 ? 0 : _linkEnd(offer, prev);
        return _fill(offer, signature, start, quantity, taker, msg.value);
    }

    /// @dev Where the fill `prev` of `offer` ended, after checking it is one: the deal keyed by
    /// (digest, prev.start) was opened with (or now holds) the terms `prev.deal` (`openedWith`: a partial
    /// release by that fill's buyer does not void the proof), whose termsHash commits to (prev.start,
    /// prev.quantity) (see {OfferLib-fillTermsHash}). By induction from the head fill (start 0), every
    /// start is the end of the previous fill and is used once: the fills of an offer form one chain.
    function _linkEnd(Offer calldata offer, FillLink calldata prev) private view returns (uint256) {
        bytes32 h = _digest(offer);
        uint256 start = prev.start;
        uint256 quantity = prev.quantity;
        if (
            prev.deal.termsHash != OfferLib.fillTermsHash(offer.termsHash, start, quantity)
                || !IAgentEscrow(escrow).openedWith(fillDealId(h, start), prev.deal)
        ) revert OfferBadLink(h, start);
        return start + quantity; // both < 2^64 (the commitment was made by a fill that checked them)
    }
    /// @dev The first MAX_REASON bytes of the last call's revert data.
    function _boundedReturndata() private pure returns (bytes memory reason) {
        // slither-disable-next-line assembly -- bounded returndatacopy (Solidity's catch copies it all)
        assembly ("memory-safe") {
            let size := returndatasize()
            if gt(size, MAX_REASON) { size := MAX_REASON }
            reason := mload(0x40)
            mstore(reason, size)
            returndatacopy(add(reason, 0x20), 0, size)
            mstore(0x40, add(add(reason, 0x20), and(add(size, 31), not(31))))
        }
    }

    /// @dev What the taker pays in ETH for a fill of `quantity` (0 for ERC-20 offers).
    function _takerEthLeg(Offer calldata offer, uint256 quantity) private pure returns (uint256) {
        if (offer.asset != address(0)) return 0;
        return (offer.side == Side.Sell ? offer.unitPrice : offer.bondPerUnit) * quantity;
    }

    function _fill(
        Offer calldata offer,
        bytes calldata signature,
        uint256 start,
        uint256 quantity,
        address taker,
        uint256 value
    ) private returns (uint256 dealId) {
        bytes32 h = _take(offer, signature, start, quantity, taker);
        (uint256 price, uint256 bond) = _fund(h, offer, quantity, taker, value);
        dealId = _open(h, offer, start, quantity, taker, price, bond);
        // slither-disable-next-line reentrancy-events -- needs the dealId openForKey returns; escrow immutable, trusted
        emit OfferFilled(h, dealId, taker, quantity, start + quantity);
    }

    /// @dev Checks of a fill of `quantity` units from `start` (reads only: the escrow's keyed deal word is
    /// the fill's record); returns the digest.
    function _take(Offer calldata offer, bytes calldata signature, uint256 start, uint256 quantity, address taker)
        private
        view
        returns (bytes32 h)
    {
        h = _digest(offer);
        // slither-disable-next-line timestamp -- expiry check by design; block-time skew is only seconds
        if (block.timestamp > offer.expiry) revert OfferExpired(h, offer.expiry, block.timestamp);
        {
            address designated = offer.taker;
            if (designated != address(0) && designated != taker) revert OfferWrongTaker(h, designated, taker);
        }
        address maker = offer.maker;
        if (maker == taker) revert OfferSelfFill(h, maker);
        {
            Account storage account = _accounts[maker];
            uint256 current = account.counter;
            if (offer.counter != current) revert OfferStaleCounter(h, offer.counter, current);
            if (OfferLib.slotCancelled(account.cancelled, offer.salt)) revert OfferIsCancelled(h);
        }
        uint256 remainingQty = offer.quantity - start; // start <= quantity: 0, or the end of a checked fill
        if (quantity == 0 || quantity > remainingQty) revert OfferOverfill(h, quantity, remainingQty);
        if (quantity < offer.minFill && quantity != remainingQty) revert OfferBelowMinFill(h, quantity, offer.minFill);
        // A signed offer's signature is checked on every fill (nothing records that it was, so a wallet
        // that revokes its ERC-1271 approval stops later fills); a posted offer needs none. The status word
        // holds only the posted flag (cancels live in the account word), so it is read only when the
        // signature is empty or fails: a signed fill skips that cold read (-2,100 gas).
        if (signature.length == 0 || !_validSignature(maker, h, signature)) {
            if (_status[h] & OfferLib.POSTED == 0) revert OfferInvalidSignature(h, maker);
        }
    }

    /// @dev Collect both legs of a fill: the taker's (msg.value or allowance) and the maker's (ETH deposit
    /// or allowance). ERC-20 legs go straight into the escrow, which counts what arrived.
    function _fund(bytes32 h, Offer calldata offer, uint256 quantity, address taker, uint256 value)
        private
        returns (uint256 price, uint256 bond)
    {
        price = offer.unitPrice * quantity; // < 2^192, no overflow
        bond = offer.bondPerUnit * quantity;
        if ((price | bond) > type(uint128).max) revert OfferInvalidTerms(h, 5);
        bool sell = offer.side == Side.Sell;
        address maker = offer.maker;
        address asset = offer.asset;
        if (asset == address(0)) {
            uint256 takerLeg = sell ? price : bond;
            if (value != takerLeg) revert OfferWrongValue(takerLeg, value);
            uint256 makerLeg = sell ? bond : price;
            if (makerLeg != 0) {
                Account storage account = _accounts[maker];
                uint256 balance = account.balance;
                if (makerLeg > balance) revert OfferInsufficientDeposit(maker, balance, makerLeg);
                unchecked {
                    account.balance = uint96(balance - makerLeg);
                }
            }
        } else {
            if (value != 0) revert OfferWrongValue(0, value);
            (address buyer, address seller) = sell ? (taker, maker) : (maker, taker);
            // slither-disable-next-line arbitrary-send-erc20 -- payer: the calling taker or the maker who signed/posted
            IERC20(asset).safeTransferFrom(buyer, escrow, price);
            // slither-disable-next-line arbitrary-send-erc20 -- payer: the calling taker or the maker who signed/posted
            if (bond != 0) IERC20(asset).safeTransferFrom(seller, escrow, bond);
        }
    }

    /// @dev Open the deal of a fill of `quantity` units from `start` in the escrow under the key (digest,
    /// start), with price and bond (both checked to fit 128 bits in {_fund}). The `Deal` (see {IOfferBook}
    /// for its fields) is written straight into the call's arguments: building a memory struct and letting
    /// the ABI encoder copy it again cost ~700 gas a fill. Offer words are copied as they are: the signature
    /// (or post) covers them raw, and the escrow refuses dirty bits in every field it reads.
    function _open(
        bytes32 h,
        Offer calldata offer,
        uint256 start,
        uint256 quantity,
        address taker,
        uint256 price,
        uint256 bond
    ) private returns (uint256 dealId) {
        uint256 ethValue = offer.asset == address(0) ? price + bond : 0;
        uint256 p = _dealArgs(h, offer, start, quantity, taker);
        address target = escrow;
        // slither-disable-next-line assembly -- the escrow call's arguments written in place (see above)
        assembly ("memory-safe") {
            mstore(add(p, 0xa4), price)
            mstore(add(p, 0xc4), bond)
            mstore(add(p, 0x204), 1) // bondPosted: both legs were collected by {_fund}
            if iszero(call(gas(), target, ethValue, p, 0x224, 0x00, 0x20)) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
            if lt(returndatasize(), 0x20) { revert(0, 0) }
            dealId := mload(0x00)
        }
    }

    /// @dev The openForKey arguments of a fill that do not depend on the amounts, written at the free memory
    /// pointer (returned; the pointer is not bumped: the call follows at once).
    function _dealArgs(bytes32 h, Offer calldata offer, uint256 start, uint256 quantity, address taker)
        private
        view
        returns (uint256 p)
    {
        bytes4 selector = IAgentEscrow.openForKey.selector;
        bytes32 key = OfferLib.fillKey(h, start);
        bytes32 terms = OfferLib.fillTermsHash(offer.termsHash, start, quantity);
        // slither-disable-next-line assembly -- fixed-layout argument block (see {_open})
        assembly ("memory-safe") {
            p := mload(0x40)
            mstore(p, selector)
            mstore(add(p, 0x04), key)
            mstore(add(p, 0xe4), terms)
        }
        {
            address maker = offer.maker;
            (address buyer, address seller) = offer.side == Side.Sell ? (taker, maker) : (maker, taker);
            address asset = offer.asset;
            // slither-disable-next-line assembly -- fixed-layout argument block (see {_open})
            assembly ("memory-safe") {
                mstore(add(p, 0x24), buyer)
                mstore(add(p, 0x44), seller)
                mstore(add(p, 0x84), asset)
            }
        }
        uint256 promisedBy = block.timestamp + offer.deliverySeconds;
        uint256 deliverBy = promisedBy + offer.graceSeconds; // < 2^40 for the next 30,000 years
        // slither-disable-next-line assembly -- fixed-layout argument block (see {_open})
        assembly ("memory-safe") {
            mstore(add(p, 0x64), calldataload(add(offer, 0x1e0))) // arbiter (offer word 15)
            mstore(add(p, 0x104), promisedBy)
            mstore(add(p, 0x124), deliverBy)
            calldatacopy(add(p, 0x144), add(offer, 0x160), 0x80) // reviewWindow .. penaltyCapBps (words 11-14)
            calldatacopy(add(p, 0x1c4), add(offer, 0x200), 0x40) // arbiterFeeBps, defaultSellerBps (16, 17)
        }
    }

    /// @dev Low-s 65-byte ECDSA signature by `maker`, else ERC-1271 approval by the `maker` contract.
    /// (ECDSA first: an EOA maker costs no EXTCODESIZE; a contract address has no key to recover to.)
    function _validSignature(address maker, bytes32 h, bytes calldata signature) private view returns (bool) {
        if (signature.length == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            // slither-disable-next-line assembly -- r, s, v straight from calldata; slices cost ~300 gas a fill
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                s := calldataload(add(signature.offset, 0x20))
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
            // slither-disable-next-line unused-return -- err is checked; errorArg only echoes the bad s value
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(h, v, r, s);
            if (err == ECDSA.RecoverError.NoError && recovered == maker) return true;
        }
        return maker.code.length != 0 && SignatureChecker.isValidERC1271SignatureNow(maker, h, signature);
    }

    function _digest(Offer calldata offer) private view returns (bytes32) {
        return _hashTypedDataV4(OfferLib.structHash(offer));
    }

    // =============================================================================================
    // Posting and cancelling
    // =============================================================================================

    /// @inheritdoc IOfferBook
    function post(Offer calldata offer) external returns (bytes32 h) {
        h = _digest(offer);
        address maker = offer.maker;
        if (msg.sender != maker) revert OfferNotMaker(h, maker, msg.sender);
        uint256 status = _status[h];
        if (status & OfferLib.POSTED != 0) revert OfferAlreadyPosted(h);
        // slither-disable-next-line timestamp -- expiry check by design; block-time skew is only seconds
        if (block.timestamp > offer.expiry) revert OfferExpired(h, offer.expiry, block.timestamp);
        Account storage account = _accounts[maker];
        uint256 current = account.counter;
        if (offer.counter != current) revert OfferStaleCounter(h, offer.counter, current);
        if (OfferLib.slotCancelled(account.cancelled, offer.salt)) revert OfferIsCancelled(h);
        _checkTerms(h, offer);
        _status[h] = status | OfferLib.POSTED;
        emit OfferPosted(h, maker, offer.resourceId, offer);
    }

    /// @dev Sanity of posted terms (signed offers are checked by clients and, at fill, by the escrow).
    function _checkTerms(bytes32 h, Offer calldata offer) private pure {
        if (offer.quantity == 0) revert OfferInvalidTerms(h, 0);
        if (offer.minFill > offer.quantity) revert OfferInvalidTerms(h, 1);
        if (offer.unitPrice == 0) revert OfferInvalidTerms(h, 2);
        if (uint256(offer.deliverySeconds) + offer.graceSeconds == 0) revert OfferInvalidTerms(h, 3);
        if (
            offer.penaltyCapBps > BPS || offer.arbiterFeeBps > BPS || offer.defaultSellerBps > BPS
                || (offer.penaltyBpsPerHour != 0 && offer.deliverySeconds == 0)
        ) revert OfferInvalidTerms(h, 4);
        if (uint256(offer.unitPrice) * offer.quantity > type(uint128).max) revert OfferInvalidTerms(h, 5);
        if (uint256(offer.bondPerUnit) * offer.quantity > type(uint128).max) revert OfferInvalidTerms(h, 5);
    }

    /// @inheritdoc IOfferBook
    function cancel(Offer calldata offer) external {
        bytes32 h = _digest(offer);
        address maker = offer.maker;
        if (msg.sender != maker) revert OfferNotMaker(h, maker, msg.sender);
        Account storage account = _accounts[maker];
        uint256 current = account.counter;
        // An older counter's offers are dead already; a later counter's cannot be marked (the bump clears
        // the slots), and marking the current one would kill other offers, not this one.
        if (offer.counter != current) revert OfferStaleCounter(h, offer.counter, current);
        uint256 slot = OfferLib.cancelSlot(offer.salt);
        account.cancelled |= uint128(1 << slot);
        emit OfferCancelled(h, maker, current, slot);
    }

    /// @inheritdoc IOfferBook
    function incrementCounter() external returns (uint256 counter) {
        Account storage account = _accounts[msg.sender];
        uint32 next = account.counter + 1; // checked: never wraps back to a counter whose offers are void
        account.counter = next;
        account.cancelled = 0; // a new counter starts with every slot free; older offers die by the counter
        counter = next;
        emit CounterIncremented(msg.sender, counter);
    }

    // =============================================================================================
    // Deposits
    // =============================================================================================

    /// @inheritdoc IOfferBook
    function deposit() external payable {
        _credit(msg.sender, msg.sender, msg.value);
    }

    /// @inheritdoc IOfferBook
    function depositFor(address account) external payable {
        _credit(account, msg.sender, msg.value);
    }

    function _credit(address account, address from, uint256 amount) private {
        _accounts[account].balance += SafeCast.toUint96(amount); // both checked: reverts beyond 2^96 - 1 wei
        emit Deposited(account, from, amount);
    }

    /// @inheritdoc IOfferBook
    function withdraw(uint256 amount) external nonReentrant {
        _withdraw(payable(msg.sender), amount);
    }

    /// @inheritdoc IOfferBook
    function withdrawTo(address to, uint256 amount) external nonReentrant {
        _withdraw(payable(to), amount);
    }

    function _withdraw(address payable to, uint256 amount) private {
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        if (amount > balance) revert OfferInsufficientDeposit(msg.sender, balance, amount);
        unchecked {
            account.balance = uint96(balance - amount);
        }
        emit Withdrawn(msg.sender, to, amount);
        // slither-disable-next-line low-level-calls -- ETH to the withdrawer's chosen receiver; reverts on failure
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert OfferTransferFailed(to, amount);
    }

    // =============================================================================================
    // Views
    // =============================================================================================

    /// @inheritdoc IOfferBook
    function hashOffer(Offer calldata offer) external view returns (bytes32) {
        return _digest(offer);
    }

    /// @inheritdoc IOfferBook
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IOfferBook
    function offerStatus(Offer calldata offer) external view returns (bool posted, bool cancelled) {
        Account storage account = _accounts[offer.maker];
        uint256 current = account.counter;
        posted = _status[_digest(offer)] & OfferLib.POSTED != 0;
        cancelled = offer.counter < current
            || (offer.counter == current && OfferLib.slotCancelled(account.cancelled, offer.salt));
    }

    /// @inheritdoc IOfferBook
    function cancelledSlots(address maker) external view returns (uint256 counter, uint256 slots) {
        Account storage account = _accounts[maker];
        return (account.counter, account.cancelled);
    }

    /// @inheritdoc IOfferBook
    function fillDealId(bytes32 offerHash, uint256 start) public view returns (uint256) {
        return DealLib.keyedId(address(this), OfferLib.fillKey(offerHash, start));
    }

    /// @inheritdoc IOfferBook
    function remainingFrom(Offer calldata offer, uint256 start) external view returns (uint256) {
        bytes32 h = _digest(offer);
        // slither-disable-next-line timestamp -- expiry check by design; block-time skew is only seconds
        if (block.timestamp > offer.expiry || start >= offer.quantity) return 0;
        Account storage account = _accounts[offer.maker];
        if (offer.counter != account.counter || OfferLib.slotCancelled(account.cancelled, offer.salt)) return 0;
        // slither-disable-next-line unused-return -- only the state tells whether a fill starts here
        (DealState state,,,) = IAgentEscrow(escrow).dealStatus(fillDealId(h, start));
        // slither-disable-next-line incorrect-equality -- exact test of the deal state enum (None: start free)
        return state == DealState.None ? offer.quantity - start : 0;
    }

    /// @inheritdoc IOfferBook
    function counterOf(address maker) external view returns (uint256) {
        return _accounts[maker].counter;
    }

    /// @inheritdoc IOfferBook
    function depositOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }
}

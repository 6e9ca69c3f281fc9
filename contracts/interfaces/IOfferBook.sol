// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Deal} from "../libraries/EscrowTypes.sol";
import {Offer} from "../libraries/OfferTypes.sol";

/// @title IOfferBook
/// @notice Singleton book of multi-issue offers that open escrow deals. Agents publish offers two ways and
/// they are filled the same way:
///   - signed off chain (EIP-712, domain "AgentMarket OfferBook" version "1", bound to the chain id and this
///     contract's address): publishing costs nothing; plain keys and ERC-1271 contract wallets can sign;
///   - posted on chain (`post`): the `OfferPosted` event carries the whole offer; fills need no signature.
/// `fill` checks the offer (signature, expiry, cancellation, counter, remaining quantity, taker), moves the
/// buyer's price and the seller's bond into the escrow and opens the deal there (`openFor`), atomically.
/// An offer can be filled in parts until its quantity is exhausted. The fills of an offer form one chain
/// over its units: the head fill (`fill`) starts at unit 0; every later fill (`fillAfter`) starts where the
/// previous one ended and proves it with that fill's deal (`FillLink`). The fill of `q` units from `s`
/// opens the escrow deal `fillDealId(digest, s)` (a keyed deal: one per start, ever) whose termsHash is
/// keccak256(abi.encode(offer.termsHash, s, q)). So each unit is sold once and the book writes no storage
/// on a fill; the cost is that two takers filling from the same start race: one fill opens, the other
/// reverts (`EscrowDealExists`) and retries from the new end (clients follow `OfferFilled`).
///
/// How money moves (who pays what, from where):
///   - The taker pays its leg in the fill transaction: ETH in `msg.value`, ERC-20 by allowance to this
///     contract (pulled straight into the escrow).
///     Sell offer: the taker is the buyer and pays `unitPrice * quantity`.
///     Buy request: the taker is the seller and pays the bond `bondPerUnit * quantity` (often zero).
///   - The maker's leg (the seller's bond of a sell offer, the price of a buy request) comes from:
///     ETH: the maker's deposit in this contract (`deposit`), withdrawable at any time (`withdraw`);
///     ERC-20: the maker's allowance to this contract (pulled straight into the escrow).
///   - Nothing else is held here: ETH deposits are the only balance, and only their owner can move them.
/// The deal opened for a fill of `q` units from `s`: buyer/seller by side, amount `unitPrice*q`, bond
/// `bondPerUnit*q` (already posted), promisedBy = fill time + deliverySeconds, deliverBy = promisedBy +
/// graceSeconds, termsHash keccak256(abi.encode(offer.termsHash, s, q)), the offer's arbiter, windows,
/// penalty and split. The late penalty is enforced by the escrow.
///
/// Deadlines are inclusive: an offer can be filled while `block.timestamp <= expiry`.
/// Every fill checks the signature of a signed offer (an ERC-1271 wallet that revokes its approval stops
/// later fills), its expiry, cancellation and the maker's counter; a posted offer needs no signature.
interface IOfferBook {
    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice `maker` posted `offer` (digest `offerHash`) on chain; it can be filled without a signature.
    event OfferPosted(bytes32 indexed offerHash, address indexed maker, bytes32 indexed resourceId, Offer offer);
    /// @notice `taker` filled `quantity` units of `offerHash`, opening escrow deal `dealId`;
    /// `filled` is the offer's total filled quantity afterwards (the fill covered units
    /// [filled - quantity, filled); `filled` is where the next fill starts).
    event OfferFilled(bytes32 indexed offerHash, uint256 indexed dealId, address taker, uint256 quantity, uint256 filled);
    /// @notice The maker cancelled `offerHash` by cancelling its slot `slot` (the low 7 bits of its salt) of
    /// counter `counter`: the unfilled rest of every offer of `maker` with that counter and slot (this one
    /// and any other the maker put in the same slot) can no longer be filled.
    event OfferCancelled(bytes32 indexed offerHash, address indexed maker, uint256 counter, uint256 slot);
    /// @notice `maker` bumped its counter to `counter`: every offer signed with a lower counter is void.
    event CounterIncremented(address indexed maker, uint256 counter);
    /// @notice `account`'s ETH deposit grew by `amount` (sent by `from`).
    event Deposited(address indexed account, address indexed from, uint256 amount);
    /// @notice `account` withdrew `amount` of its ETH deposit to `to`.
    event Withdrawn(address indexed account, address to, uint256 amount);
    /// @notice `fillMany` skipped item `index` (offer `offerHash`) because it reverted with `reason`.
    event FillSkipped(uint256 indexed index, bytes32 indexed offerHash, bytes reason);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice The offer expired at `expiry` (inclusive); it is `now`.
    error OfferExpired(bytes32 offerHash, uint256 expiry, uint256 now);
    /// @notice The maker cancelled the offer.
    error OfferIsCancelled(bytes32 offerHash);
    /// @notice The offer was signed with counter `counter`; the maker's counter is now `current`.
    error OfferStaleCounter(bytes32 offerHash, uint256 counter, uint256 current);
    /// @notice A fill of `quantity` units: zero, or more than the `remaining` quantity.
    error OfferOverfill(bytes32 offerHash, uint256 quantity, uint256 remaining);
    /// @notice A fill of `quantity` units is below the offer's `minFill` and does not take the whole rest.
    error OfferBelowMinFill(bytes32 offerHash, uint256 quantity, uint256 minFill);
    /// @notice The offer is private to `taker`; `caller` is someone else.
    error OfferWrongTaker(bytes32 offerHash, address taker, address caller);
    /// @notice The maker cannot fill its own offer.
    error OfferSelfFill(bytes32 offerHash, address maker);
    /// @notice The signature is not a valid (low-s ECDSA or ERC-1271) signature of the offer by `maker`,
    /// and the offer was not posted.
    error OfferInvalidSignature(bytes32 offerHash, address maker);
    /// @notice Only the maker (`maker`) can post or cancel its offer; `caller` is not it.
    error OfferNotMaker(bytes32 offerHash, address maker, address caller);
    /// @notice The offer is already posted (or validated by a fill).
    error OfferAlreadyPosted(bytes32 offerHash);
    /// @notice The offer's terms cannot open a deal (field `field`: 0 quantity, 1 minFill, 2 unitPrice,
    /// 3 delivery time, 4 bps value, 5 amount overflow).
    error OfferInvalidTerms(bytes32 offerHash, uint256 field);
    /// @notice `msg.value` must be `expected` (the taker's ETH leg; zero for ERC-20 offers).
    error OfferWrongValue(uint256 expected, uint256 sent);
    /// @notice `account` has `balance` wei deposited, `needed` is required.
    error OfferInsufficientDeposit(address account, uint256 balance, uint256 needed);
    /// @notice Sending `amount` wei to `to` failed.
    error OfferTransferFailed(address to, uint256 amount);
    /// @notice Too little gas left to give the next `fillMany` item its full FILL_ITEM_GAS (`gasLeft`).
    error OfferInsufficientGas(uint256 gasLeft);
    /// @notice `fillItem` is internal to `fillMany` (only this contract may call it).
    error OfferOnlySelf(address caller);
    /// @notice `fillAfter`: the link does not prove a fill of `offerHash` from unit `start` (no such deal, other
    /// terms, or a quantity its deal does not commit to).
    error OfferBadLink(bytes32 offerHash, uint256 start);
    /// @notice Constructor: `escrow` is not a contract (zero address or an account without code).
    error OfferInvalidEscrow(address escrow);

    // ---------------------------------------------------------------------------------------------
    // Offers
    // ---------------------------------------------------------------------------------------------

    /// @notice A fill of an offer, as proof of where the next one starts: it took `quantity` units from
    /// unit `start` and opened the deal `fillDealId(digest, start)` whose current terms are `deal`.
    struct FillLink {
        uint256 start;
        uint256 quantity;
        Deal deal;
    }

    /// @notice The head fill: `quantity` units of `offer` from unit 0, as the taker, opening an escrow deal;
    /// returns its id. Reverts `EscrowDealExists` once the offer has a head fill (use `fillAfter`).
    /// `signature`: 65-byte ECDSA (r, s, v) by the maker or any bytes its ERC-1271 wallet accepts; ignored
    /// (may be empty) for posted offers. Pay the taker's ETH leg in `msg.value`.
    function fill(Offer calldata offer, bytes calldata signature, uint256 quantity)
        external
        payable
        returns (uint256 dealId);

    /// @notice A later fill: `quantity` units from where the fill `prev` ended (`prev.start + prev.quantity`),
    /// otherwise as `fill`. Reverts `EscrowDealExists` when another fill already started there (fill from
    /// its end instead), `OfferBadLink` when `prev` is not a fill of this offer.
    function fillAfter(Offer calldata offer, bytes calldata signature, uint256 quantity, FillLink calldata prev)
        external
        payable
        returns (uint256 dealId);

    /// @notice One item of `fillMany`: `prev.quantity == 0` makes it a head fill (`fill`), else `fillAfter`.
    struct FillItem {
        Offer offer;
        bytes signature;
        uint256 quantity;
        FillLink prev;
    }

    /// @notice Fill many offers in one transaction as the taker. An item that would revert is skipped
    /// (`FillSkipped` with the first 228 bytes of its reason) and the others go ahead; `dealIds[i]` is 0 for
    /// a skipped item. Each item runs with `FILL_ITEM_GAS` at most (a maker's ERC-1271 check or a token
    /// burning gas sinks only its own item; such an item is skipped with an empty reason); the call
    /// reverts with `OfferInsufficientGas` rather than give an item less.
    /// `msg.value` must cover the ETH legs of all items; what skipped items did not use is refunded
    /// (credited to the caller's deposit if the refund cannot be sent).
    function fillMany(FillItem[] calldata items) external payable returns (uint256[] memory dealIds);

    /// @notice Internal step of `fillMany` (external so a failing item rolls back alone): only this contract
    /// may call it; fills for `taker`.
    function fillItem(
        Offer calldata offer,
        bytes calldata signature,
        uint256 quantity,
        FillLink calldata prev,
        address taker
    ) external payable returns (uint256 dealId);

    /// @notice Post `offer` on chain as its maker (the event carries it whole; fills need no signature).
    function post(Offer calldata offer) external returns (bytes32 offerHash);

    /// @notice Cancel `offer` as its maker: its unfilled rest can no longer be filled. Cancels its slot
    /// (`salt % 128`) of the maker's current counter, so every other offer of the maker with that counter
    /// and slot dies with it (clients give each live offer a slot of its own). Reverts `OfferStaleCounter`
    /// unless the offer carries the current counter (an older one is void already; a later one cannot be
    /// marked). There is no way back: only `incrementCounter` clears the slots, and it voids every offer
    /// they covered.
    function cancel(Offer calldata offer) external;

    /// @notice Void every offer the caller signed or posted so far (bumps its counter and frees its 128 cancel
    /// slots for the new counter); returns the new counter.
    function incrementCounter() external returns (uint256 counter);

    // ---------------------------------------------------------------------------------------------
    // ETH deposits (the maker's ETH leg)
    // ---------------------------------------------------------------------------------------------

    /// @notice Deposit `msg.value` wei for the caller.
    function deposit() external payable;

    /// @notice Deposit `msg.value` wei for `account`.
    function depositFor(address account) external payable;

    /// @notice Withdraw `amount` wei of the caller's deposit to the caller (at any time).
    function withdraw(uint256 amount) external;

    /// @notice Withdraw `amount` wei of the caller's deposit to `to` (at any time).
    function withdrawTo(address to, uint256 amount) external;

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice The escrow deals are opened in.
    function escrow() external view returns (address);

    /// @notice EIP-712 digest of `offer` (what is signed, and the key of its fill status).
    function hashOffer(Offer calldata offer) external view returns (bytes32);

    /// @notice EIP-712 domain separator of this contract on this chain.
    function domainSeparator() external view returns (bytes32);

    /// @notice Whether `offer` was posted on chain, and whether its maker cancelled it: its slot of its
    /// counter is cancelled, or the counter moved past it (`incrementCounter`). Once true, true for ever.
    /// (How much of it is filled is not stored in one place: follow `OfferFilled`, whose `filled` is the
    /// running total.)
    function offerStatus(Offer calldata offer) external view returns (bool posted, bool cancelled);

    /// @notice `maker`'s current counter and the cancel slots it cancelled under it (bit s: slot s), so a
    /// client can give a new offer a slot no cancel has killed.
    function cancelledSlots(address maker) external view returns (uint256 counter, uint256 slots);

    /// @notice The escrow deal id of the fill of `offerHash` that starts at unit `start` (whether or not it
    /// exists: `escrow.dealStatus` says).
    function fillDealId(bytes32 offerHash, uint256 start) external view returns (uint256);

    /// @notice Units of `offer` a fill from `start` could take now: `quantity - start` when no fill started
    /// there yet, else 0 (also 0 if expired, cancelled or counter-voided). `start` must be where the last
    /// fill ended (the `filled` of the latest `OfferFilled`, 0 for none); other starts are not checked.
    function remainingFrom(Offer calldata offer, uint256 start) external view returns (uint256);

    /// @notice The counter offers of `maker` must carry.
    function counterOf(address maker) external view returns (uint256);

    /// @notice ETH deposited by `account`.
    function depositOf(address account) external view returns (uint256);
}

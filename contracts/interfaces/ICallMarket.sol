// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICredits} from "./ICredits.sol";
import {DealTemplate} from "../libraries/AuctionTypes.sol";
import {BatchParams, BatchStatus, BatchView} from "../libraries/CallTypes.sol";
import {Side} from "../libraries/OfferTypes.sol";

/// @title ICallMarket
/// @notice A uniform-price call market (batch double auction) per resource and batch window, after Gnosis
/// EasyAuction and CoW Protocol's uniform clearing prices.
///
/// Life of a batch:
/// 1. Anyone opens a batch: the escrow terms of the resource (a {DealTemplate}; `bond` is the seller bond
///    per unit), the close time, the settlement window and the price tick (10**tickExp asset units).
/// 2. While `now <= closeTime` makers submit bids and asks (price in ticks per unit, quantity) and cancel
///    their own. Each order locks its funds (a bid price x quantity, an ask bond x quantity), paid with
///    `msg.value` or the maker's credit here. What an order does not spend in escrow deals returns to
///    its maker's credit when it is processed; credits can be withdrawn at any time.
/// 3. After `closeTime` anyone clears it by proposing the uniform price; the contract verifies in one pass
///    over the orders (O(n), in order-id order, so every live order is counted exactly once) that the
///    price is THE equilibrium of the submitted orders, or reverts.
/// 4. Anyone settles the cleared batch in chunks: fills are paired in id order, each pair becomes one
///    `AgentEscrow` deal (buyer = bid maker, seller = ask maker, amount = price x paired quantity, bond =
///    bond per unit x paired quantity) opened through the escrow's market entry `openFor`.
/// 5. After `closeTime + settleWindow` nothing is cleared or settled any more: every order not yet
///    processed is released (walk: `release`, one order: `reclaim`), permissionlessly.
///
/// Allocation and price (integer prices in ticks; D(p) = bid units priced >= p, S(p) = ask units <= p):
/// - Volume V = min(D(p), S(p)) at the clearing price p, and p must satisfy D(p+1) <= V and
///   S(p-1) <= V: every bid strictly above and every ask strictly below p trades in full, and the volume
///   is the largest any price achieves.
/// - Ties: orders priced exactly p on the long side are filled in order-id (time) order until V is
///   reached; the one that reaches it is filled in part, later ones not at all.
/// - Price rule (k-double auction with k = 1/2): with b_i (a_i) the i-th highest bid (lowest ask) unit,
///   the equilibrium prices form the interval [max(a_V, b_(V+1)), min(b_V, a_(V+1))]; the clearing
///   price is its midpoint, rounded down. With V = 0 (nothing crosses) any separating price clears.
/// - Orders by the template's arbiter are void (the escrow forbids the arbiter to be a party): they are
///   left out of the clearing and released. A bid and an ask of the same maker paired with each other
///   settle as a no-op (no deal, no money moves; see docs/threat-model.md, "Call market").
interface ICallMarket is ICredits {
    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice Batch `batchId` was opened by `opener` for the resource `terms.termsHash`.
    event BatchOpened(
        uint256 indexed batchId, address indexed opener, bytes32 indexed resource, DealTemplate terms, BatchParams params
    );
    /// @notice `maker` placed order `orderId` (per side, from 0) on `side` of batch `batchId`.
    event OrderPlaced(
        uint256 indexed batchId, address indexed maker, Side side, uint256 orderId, uint64 priceTicks, uint32 quantity
    );
    /// @notice The maker cancelled order `orderId` on `side` during the window; its lock was released.
    event OrderCancelled(uint256 indexed batchId, Side side, uint256 orderId);
    /// @notice Batch `batchId` cleared at `priceTicks` (`price` asset units per unit); `volume` units trade.
    event BatchCleared(uint256 indexed batchId, address indexed clearer, uint64 priceTicks, uint256 price, uint256 volume);
    /// @notice `quantity` units of bid `bidId` were paired with ask `askId` into escrow deal `dealId`
    /// (0 when both orders belong to the same maker: a no-op, nothing moved).
    event TradeSettled(uint256 indexed batchId, uint256 indexed dealId, uint256 bidId, uint256 askId, uint256 quantity);
    /// @notice Every order of batch `batchId` has been processed: settled, or (`expired`) released after the
    /// settlement deadline without being settled.
    event BatchDone(uint256 indexed batchId, bool expired);
    /// @notice After the deadline, order `orderId` on `side` was released on its own (not by the walk).
    event OrderReclaimed(uint256 indexed batchId, Side side, uint256 orderId);
    /// @notice `amount` of `asset` was credited to `account` (ERC-20: what actually arrived).
    event Deposited(address indexed account, address indexed asset, uint256 amount);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice No batch `batchId`.
    error CallBatchNotFound(uint256 batchId);
    /// @notice The batch is in `status`, which does not allow this action.
    error CallInvalidState(uint256 batchId, BatchStatus status);
    /// @notice The order window closed at `closeTime` (`now` > `closeTime`).
    error CallWindowClosed(uint256 batchId, uint256 closeTime, uint256 now);
    /// @notice The order window is still open until `closeTime` (`now` <= `closeTime`): too early to clear.
    error CallWindowOpen(uint256 batchId, uint256 closeTime, uint256 now);
    /// @notice The settlement deadline `settleBy` passed (`now` > `settleBy`): only releases remain.
    error CallDeadlinePassed(uint256 batchId, uint256 settleBy, uint256 now);
    /// @notice The settlement deadline `settleBy` has not passed (`now` <= `settleBy`).
    error CallDeadlineNotReached(uint256 batchId, uint256 settleBy, uint256 now);
    /// @notice Batch parameters or template rejected: `reason` 0 creator is not the caller, 1 delays
    /// (need 0 < deliveryDelay, promiseDelay <= deliveryDelay), 2 bps above 10,000, 3 close time in the
    /// past, 4 zero settlement window, 5 tick exponent above 30, 6 arbiter is the caller.
    error CallInvalidParams(uint8 reason);
    /// @notice Price (ticks) and quantity must be non-zero, and the locked amount must fit 128 bits.
    error CallInvalidOrder(uint256 priceTicks, uint256 quantity);
    /// @notice `side` of the batch holds the maximum number of orders.
    error CallBatchFull(uint256 batchId, Side side);
    /// @notice `account` has `available` free in `asset`; the action needs `needed`.
    error CallInsufficientFunds(address account, address asset, uint256 available, uint256 needed);
    /// @notice `msg.value` must be `expected` (zero for ERC-20 batches and deposits; an ETH deposit needs
    /// a non-zero value, shown as expected 1).
    error CallWrongValue(uint256 expected, uint256 sent);
    /// @notice Order `orderId` on `side` does not exist (never placed, cancelled or already processed).
    error CallOrderNotFound(uint256 batchId, Side side, uint256 orderId);
    /// @notice `caller` is not the maker of the order.
    error CallNotMaker(uint256 batchId, uint256 orderId, address caller);
    /// @notice The template passed does not hash to the batch's.
    error CallTermsMismatch(uint256 batchId);
    /// @notice `priceTicks` is not an equilibrium of the batch: at it, demand `demand` = D(p), supply
    /// `supply` = S(p), bids strictly above `demandAbove` = D(p+1) and asks strictly below `supplyBelow` =
    /// S(p-1); an equilibrium needs max(D(p+1), S(p-1)) <= min(D(p), S(p)).
    error CallNotEquilibrium(
        uint256 batchId, uint64 priceTicks, uint256 demand, uint256 supply, uint256 demandAbove, uint256 supplyBelow
    );
    /// @notice `priceTicks` is an equilibrium but not the one the price rule picks: `expectedTicks` is.
    error CallPriceRule(uint256 batchId, uint64 priceTicks, uint64 expectedTicks);
    /// @notice Constructor: the escrow address has no code.
    error CallInvalidEscrow(address escrow);
    /// @notice `openBatch`: the escrow no longer lists this market for new sales (`isListed` is false).
    error CallMarketNotListed(address escrow);
    /// @notice An account total would exceed 128 bits (unreachable with real tokens).
    error CallAccountingOverflow();

    // ---------------------------------------------------------------------------------------------
    // Batches and orders
    // ---------------------------------------------------------------------------------------------

    /// @notice Open a batch with the escrow terms `terms` (`terms.creator` must be the caller; `terms.bond`
    /// is the seller bond per unit) and `params`. Returns its id.
    function openBatch(DealTemplate calldata terms, BatchParams calldata params) external returns (uint256 batchId);

    /// @notice Bid for `quantity` units at most `priceTicks` ticks each; locks priceTicks x tick x quantity
    /// (ETH: `msg.value`, any excess credited, any shortfall taken from the caller's credit; ERC-20: from
    /// the credit, the rest pulled).
    function submitBid(uint256 batchId, uint64 priceTicks, uint32 quantity) external payable returns (uint256 orderId);

    /// @notice Ask for `quantity` units at least `priceTicks` ticks each; locks the bond (bond per unit x
    /// quantity) like a bid locks its price.
    function submitAsk(uint256 batchId, uint64 priceTicks, uint32 quantity) external payable returns (uint256 orderId);

    /// @notice The maker cancels its order while the window is open; the lock is released.
    function cancel(uint256 batchId, Side side, uint256 orderId) external;

    /// @notice Anyone clears the closed batch at `priceTicks` (computed off chain). Reverts unless it is the
    /// equilibrium the price rule picks (see the contract notes). `terms` are the batch's template.
    function clear(uint256 batchId, DealTemplate calldata terms, uint64 priceTicks) external returns (uint256 volume);

    /// @notice Anyone settles up to `maxSteps` steps of a cleared batch (a step opens one escrow deal or
    /// finishes one order). Returns the steps taken and whether every order is now processed.
    function settle(uint256 batchId, DealTemplate calldata terms, uint256 maxSteps)
        external
        returns (uint256 steps, bool done);

    /// @notice After the settlement deadline, anyone releases up to `maxOrders` unprocessed orders.
    function release(uint256 batchId, uint256 maxOrders) external returns (uint256 released, bool done);

    /// @notice After the settlement deadline, anyone releases one unprocessed order (cheaper than walking a
    /// large batch to reach it).
    function reclaim(uint256 batchId, Side side, uint256 orderId) external;

    // ---------------------------------------------------------------------------------------------
    // Accounts
    // ---------------------------------------------------------------------------------------------

    /// @notice Credit `amount` of `asset` to the caller (ETH: `msg.value`, `amount` ignored; ERC-20: what
    /// actually arrives).
    function deposit(address asset, uint256 amount) external payable;

    // Withdrawals (`withdraw`, `withdrawTo`, `withdrawPart`) and `creditOf` come from {ICredits}: the free
    // balance of an account is its credit, and an order's lock returns to it.

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice A live order: maker, price in ticks and quantity (all zero once cancelled or processed).
    function orderOf(uint256 batchId, Side side, uint256 orderId)
        external
        view
        returns (address maker, uint64 priceTicks, uint32 quantity);

    /// @notice The batch's asset, times, tick, order counts, status and (once cleared) price and volume.
    function batchInfo(uint256 batchId)
        external
        view
        returns (BatchView memory info);

    /// @notice Settlement progress: next bid and ask to process, units of each already paired.
    function progressOf(uint256 batchId)
        external
        view
        returns (uint256 bidCursor, uint256 askCursor, uint256 bidPaired, uint256 askPaired);

    /// @notice keccak256(abi.encode(terms)): what a batch stores of its template.
    function hashTemplate(DealTemplate calldata terms) external pure returns (bytes32);

    /// @notice The escrow deals are opened in.
    function escrow() external view returns (address);

    /// @notice The id the next batch will get.
    function nextBatchId() external view returns (uint256);

    /// @notice Most orders one side of a batch can hold (bounds the one-transaction clearing).
    function MAX_ORDERS() external view returns (uint256);
}

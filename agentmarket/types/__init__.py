"""Domain types, in one home: escrow deals, offers, auctions, channels and vouchers.

Each Solidity struct's field list (names, order, ABI types) is read once from the shipped ABI
(:mod:`agentmarket.types.abi`); the dataclasses here add Python defaults, checks and conveniences, and
refuse to import if they no longer mirror their struct. Amounts are integers in the asset's smallest
unit; times are unix seconds (UTC). :data:`ETH` is the asset address of native ETH (the zero address),
not an amount: one ether in wei is :data:`agentmarket.units.WEI_PER_ETH`.
"""

from __future__ import annotations

from .abi import StructField, StructSpec, struct_spec
from .auctions import (
    TEMPLATE_ABI_TYPES,
    TEMPLATE_STRUCT,
    Auction,
    AuctionKind,
    AuctionStatus,
    Bid,
    DealTemplate,
)
from .base import (
    BPS,
    ETH,
    ZERO_ADDRESS,
    ZERO_HASH,
    content_hash,
    resource_id,
    to_bytes32,
    to_seconds,
    to_timestamp,
)
from .channels import CHANNEL_KEY_STRUCT, Channel, ChannelStatus, Voucher
from .escrow import DEAL_ABI_TYPES, DEAL_STRUCT, Deal, DealState, DealTerms, Settlement, protocol_fee
from .offers import CANCEL_SLOTS, OFFER_SPEC, OFFER_STRUCT, OFFER_TYPEHASH, UINT128_MAX, Offer, Side

__all__ = [
    "BPS",
    "CANCEL_SLOTS",
    "CHANNEL_KEY_STRUCT",
    "DEAL_ABI_TYPES",
    "DEAL_STRUCT",
    "ETH",
    "OFFER_SPEC",
    "OFFER_STRUCT",
    "OFFER_TYPEHASH",
    "TEMPLATE_ABI_TYPES",
    "TEMPLATE_STRUCT",
    "UINT128_MAX",
    "ZERO_ADDRESS",
    "ZERO_HASH",
    "Auction",
    "AuctionKind",
    "AuctionStatus",
    "Bid",
    "Channel",
    "ChannelStatus",
    "Deal",
    "DealState",
    "DealTemplate",
    "DealTerms",
    "Offer",
    "Settlement",
    "Side",
    "StructField",
    "StructSpec",
    "Voucher",
    "content_hash",
    "protocol_fee",
    "resource_id",
    "struct_spec",
    "to_bytes32",
    "to_seconds",
    "to_timestamp",
]

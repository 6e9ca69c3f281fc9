"""Assemble and run a relay: database, chain connection, OfferBook (and ReputationRegistry) clients, the
indexer thread, the FastAPI app, uvicorn.

Where the contracts are: ``offerbook``/``registry`` addresses if given, else the deployment manifest of the
connected chain (``deployments/<chainId>.json``). With no chain URL an anvil is started on a free loopback
port and the suite deployed on it (manifest written), so ``agentmarket relay`` alone gives a working
market that other processes reach through the printed URLs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from ..chain import Chain
from ..clients.offers import OffersClient
from ..clients.reputation import ReputationClient
from ..deploy import load_manifest, manifest_path
from ..errors import ConfigError
from .app import Relay, RelaySettings
from .db import DEFAULT_DB, open_db
from .indexer import Indexer
from .store import Store


@dataclass
class RelayConfig:
    """Everything ``agentmarket relay`` takes."""

    db: str = DEFAULT_DB
    chain: str | None = None  # JSON-RPC URL; None starts a local anvil with the suite deployed
    host: str = "127.0.0.1"
    port: int = 8088
    offerbook: str | None = None
    registry: str | None = None
    manifest: str | None = None
    from_block: int | None = None
    confirmations: int = 0
    poll_interval: float = 0.25
    indexer: bool = True
    settings: RelaySettings = field(default_factory=RelaySettings)


def _addresses(chain: Chain, cfg: RelayConfig) -> tuple[str, str | None, int]:
    if cfg.offerbook:
        return (
            to_checksum_address(cfg.offerbook),
            cfg.registry and to_checksum_address(cfg.registry),
            cfg.from_block or 0,
        )
    path = Path(cfg.manifest) if cfg.manifest else manifest_path(chain.chain_id)
    if not path.is_file():
        raise ConfigError(
            f"no OfferBook address: pass --offerbook (and --registry), or deploy first so {path} exists"
        )
    contracts = load_manifest(path, chain.chain_id).get("contracts", {})
    if "OfferBook" not in contracts:
        raise ConfigError(f"{path} has no OfferBook (fix: `agentmarket deploy --rpc ...`)")
    book = contracts["OfferBook"]
    reg = contracts.get("ReputationRegistry", {}).get("address")
    start = cfg.from_block if cfg.from_block is not None else int(book.get("block", 0))
    return to_checksum_address(book["address"]), reg and to_checksum_address(reg), start


def build_relay(cfg: RelayConfig, chain: Chain) -> Relay:
    """A relay over ``chain`` as configured (indexer started if enabled)."""
    address, registry, start = _addresses(chain, cfg)
    if not chain.w3.eth.get_code(address):  # type: ignore[arg-type]
        raise ConfigError(f"no contract at OfferBook address {address} on chain {chain.chain_id}")
    book = OffersClient(chain, address)
    reputation = None
    if registry:
        from ..clients.escrow import EscrowClient

        escrow = EscrowClient(chain, str(book.contract.functions.escrow().call()))
        reputation = ReputationClient(chain, registry, escrow)
    store = Store(open_db(cfg.db))
    indexer = None
    if cfg.indexer:
        indexer = Indexer(
            book, store, reputation=reputation, confirmations=cfg.confirmations, start_block=start,
            poll_interval=cfg.poll_interval,
        )  # fmt: skip
        indexer.catch_up()
        indexer.start()
    return Relay(book, store, reputation=reputation, indexer=indexer, settings=cfg.settings)


def local_chain() -> tuple[Chain, Any]:
    """An anvil on a free loopback port with the suite deployed (its manifest written)."""
    from ..deploy import deploy_suite

    chain = Chain.anvil(accounts=10)
    suite = deploy_suite(chain, write=True, reuse=False)
    return chain, suite


def serve(cfg: RelayConfig, *, announce: Any = print) -> None:
    """Run the relay in the foreground until interrupted."""
    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if cfg.chain:
        chain = Chain.connect(cfg.chain, require_funded=False)
    else:
        chain, suite = local_chain()
        announce(f"started anvil at {chain.url} (chain id {chain.chain_id}); suite deployed:")
        for name, addr in suite.addresses.items():
            announce(f"  {name:<24} {addr}")
    relay = build_relay(cfg, chain)
    announce(
        f"relay for OfferBook {relay.book.address} on chain {chain.chain_id}, db {cfg.db.split('@')[-1]}, "
        f"listening on http://{cfg.host}:{cfg.port}"
    )
    config = uvicorn.Config(
        relay.app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=60,  # agents keep connections between posts; a loaded host pauses them
    )
    try:
        uvicorn.Server(config).run()
    finally:
        relay.close()
        chain.close()

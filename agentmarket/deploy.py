"""Deploy the contract suite in dependency order and keep a manifest per chain.

The manifest ``deployments/<chainId>.json`` records address, transaction, block and artifact hash of
every contract. A later deploy reuses a contract whose code on chain still matches; everything else is
deployed afresh. The manifest is written atomically: a failed deploy never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from .chain import Chain
from .compiler import load_artifact
from .errors import ConfigError
from .logscan import remember_deployment

DEFAULT_FEE_BPS = 50  # 0.5% protocol fee, taken only when a seller is paid


@dataclass
class DeployContext:
    """What a constructor-argument builder can see: the chain, the deployer, and earlier addresses."""

    chain: Chain
    deployer: LocalAccount
    addresses: dict[str, str]
    fee_bps: int
    fee_recipient: str


@dataclass(frozen=True)
class ContractSpec:
    """One contract of the suite: its artifact name, constructor args, and an optional wiring step."""

    name: str
    args: Callable[[DeployContext], tuple[Any, ...]] = lambda ctx: ()
    # called after every contract is deployed (e.g. authorise a market in the escrow); must be idempotent
    wire: Callable[[DeployContext, dict[str, Contract]], None] | None = None


def _authorise_market(market: str) -> Callable[[DeployContext, dict[str, Contract]], None]:
    """Wiring step: let ``market`` open deals in the escrow (skipped when already authorised)."""

    def wire(ctx: DeployContext, contracts: dict[str, Contract]) -> None:
        escrow = contracts["AgentEscrow"]
        address = contracts[market].address
        if not escrow.functions.isMarket(address).call():
            ctx.chain.transactor.transact(ctx.deployer, escrow.functions.setMarket(address, True))

    return wire


# Dependency order. Each contract family adds its entry here.
SUITE: list[ContractSpec] = [
    # owner (may only add/remove markets), immutable fee recipient and fee in bps (<= 500)
    ContractSpec("AgentEscrow", lambda ctx: (ctx.deployer.address, ctx.fee_recipient, ctx.fee_bps)),
    # signed and posted offers that open escrow deals (an authorised market of the escrow)
    ContractSpec(
        "OfferBook", lambda ctx: (ctx.addresses["AgentEscrow"],), wire=_authorise_market("OfferBook")
    ),
    # auction singletons: each settles sales into the escrow through openFor
    ContractSpec(
        "EnglishAuction", lambda ctx: (ctx.addresses["AgentEscrow"],), _authorise_market("EnglishAuction")
    ),
    ContractSpec(
        "DutchAuction", lambda ctx: (ctx.addresses["AgentEscrow"],), _authorise_market("DutchAuction")
    ),
    ContractSpec(
        "SealedBidAuction", lambda ctx: (ctx.addresses["AgentEscrow"],), _authorise_market("SealedBidAuction")
    ),
    ContractSpec(
        "ProcurementAuction",
        lambda ctx: (ctx.addresses["AgentEscrow"],),
        _authorise_market("ProcurementAuction"),
    ),
    ContractSpec("PaymentChannels"),
    # reads deal terms and states from the escrow; no owner, no funds
    ContractSpec("ReputationRegistry", lambda ctx: (ctx.addresses["AgentEscrow"],)),
    # uniform-price call market: cleared batches settle pair by pair into the escrow through openFor
    # (last, so adding it moved no earlier contract's address: their gas figures stay comparable)
    ContractSpec("CallMarket", lambda ctx: (ctx.addresses["AgentEscrow"],), _authorise_market("CallMarket")),
]


@dataclass
class Suite:
    """The deployed contracts of one chain, as web3.py ``Contract`` objects by artifact name."""

    chain: Chain
    contracts: dict[str, Contract]
    manifest: dict[str, Any] = field(default_factory=dict)
    deployed: list[str] = field(default_factory=list)  # names deployed by this call (others were reused)

    def __post_init__(self) -> None:
        # clients built on this suite start their event lookups at each contract's deployment block
        for entry in self.manifest.get("contracts", {}).values():
            if isinstance(entry, dict) and "address" in entry and "block" in entry:
                remember_deployment(self.chain.w3, entry["address"], int(entry["block"]))

    def __getitem__(self, name: str) -> Contract:
        try:
            return self.contracts[name]
        except KeyError:
            raise KeyError(
                f"{name} is not part of the deployed suite ({', '.join(self.contracts)})"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self.contracts

    @property
    def addresses(self) -> dict[str, str]:
        return {name: c.address for name, c in self.contracts.items()}


def artifact_hash(artifact: dict[str, Any]) -> str:
    """sha256 of the creation bytecode and ABI: identifies what a manifest entry was built from."""
    blob = json.dumps({"bytecode": artifact["bytecode"], "abi": artifact["abi"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def manifest_path(chain_id: int, directory: Path | str = "deployments") -> Path:
    return Path(directory) / f"{chain_id}.json"


def load_manifest(path: Path, chain_id: int) -> dict[str, Any]:
    """Read a manifest; refuse one written for another chain."""
    if not path.is_file():
        return {"chainId": chain_id, "contracts": {}}
    try:
        manifest = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"manifest {path} is not valid JSON (fix: delete it to redeploy)") from None
    if int(manifest.get("chainId", -1)) != chain_id:
        raise ConfigError(
            f"manifest {path} is for chain {manifest.get('chainId')}, connected chain is {chain_id} "
            "(fix: point --manifest at this chain's file or delete it)"
        )
    return dict(manifest)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def _reusable(chain: Chain, entry: dict[str, Any] | None, artifact: dict[str, Any]) -> bool:
    if not entry or entry.get("artifactHash") != artifact_hash(artifact):
        return False
    code = bytes(chain.w3.eth.get_code(to_checksum_address(entry["address"])))
    return bool(code) and "0x" + keccak(code).hex() == entry.get("codeHash")


def deploy_suite(
    chain: Chain,
    *,
    deployer: LocalAccount | None = None,
    fee_bps: int = DEFAULT_FEE_BPS,
    fee_recipient: str | None = None,
    manifest: Path | str | None = None,
    write: bool = True,
    specs: list[ContractSpec] | None = None,
    reuse: bool = True,
) -> Suite:
    """Deploy (or reuse) every contract of the suite and return it.

    ``manifest`` defaults to ``deployments/<chainId>.json``; ``write=False`` keeps it untouched (tests).
    """
    if deployer is None:
        if not chain.accounts:
            raise ConfigError(
                f"no account to deploy from on chain {chain.chain_id} ({chain.kind}) "
                "(fix: set AGENTMARKET_PRIVATE_KEYS or AGENTMARKET_KEYSTORE)"
            )
        deployer = chain.accounts[0]
    if not 0 <= fee_bps <= 500:
        raise ConfigError(f"fee_bps={fee_bps} outside 0..500 (the contracts cap the fee at 5%)")
    path = Path(manifest) if manifest else manifest_path(chain.chain_id)
    book: dict[str, Any] = (
        load_manifest(path, chain.chain_id) if reuse else {"chainId": chain.chain_id, "contracts": {}}
    )
    ctx = DeployContext(chain, deployer, {}, fee_bps, fee_recipient or deployer.address)
    contracts: dict[str, Contract] = {}
    deployed: list[str] = []
    entries: dict[str, Any] = dict(book.get("contracts", {}))
    for spec in specs if specs is not None else SUITE:
        artifact = load_artifact(spec.name)
        if reuse and _reusable(chain, entries.get(spec.name), artifact):
            address = to_checksum_address(entries[spec.name]["address"])
        else:
            receipt = chain.transactor.deploy(deployer, artifact, *spec.args(ctx))
            address = receipt["contractAddress"]
            code = bytes(chain.w3.eth.get_code(address))
            entries[spec.name] = {
                "address": address,
                "txHash": "0x" + bytes(receipt["transactionHash"]).hex(),
                "block": receipt["blockNumber"],
                "gasUsed": receipt["gasUsed"],
                "artifactHash": artifact_hash(artifact),
                "codeHash": "0x" + keccak(code).hex(),
            }
            deployed.append(spec.name)
        ctx.addresses[spec.name] = address
        contracts[spec.name] = chain.w3.eth.contract(address=address, abi=artifact["abi"])
    for spec in specs if specs is not None else SUITE:
        if spec.wire is not None:
            spec.wire(ctx, contracts)
    book = {"chainId": chain.chain_id, "contracts": {n: entries[n] for n in contracts}}
    if write:
        write_manifest(path, book)
    return Suite(chain, contracts, book, deployed)


def attach(chain: Chain, name: str, address: str) -> Contract:
    """A web3.py contract object for a shipped artifact at ``address``."""
    return chain.w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])

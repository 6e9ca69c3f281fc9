"""The ``agentmarket`` command: compile, deploy, run a chain, run the demo.

Errors print one line naming the cause and the fix, and exit with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import AgentMarketError


def _cmd_compile(args: argparse.Namespace) -> int:
    from . import compiler, errorgen

    if args.check:
        problems = compiler.check_artifacts()
        problems += errorgen.check_module(errorgen.shipped_artifacts())
        if problems:
            for line in problems:
                print(f"artifact mismatch: {line}", file=sys.stderr)
            print(
                "fix: run `agentmarket compile` and commit agentmarket/artifacts/ and "
                f"agentmarket/{errorgen.MODULE_PATH.name}",
                file=sys.stderr,
            )
            return 1
        print(f"artifacts and {errorgen.MODULE_PATH.name} match a fresh compile of contracts/")
        return 0
    started = time.perf_counter()
    artifacts = compiler.compile_sources(use_cache=not args.no_cache)
    written = compiler.write_artifacts(artifacts)
    errorgen.write_module(artifacts)
    print(
        f"compiled {len(written)} contracts in {time.perf_counter() - started:.2f}s -> {compiler.ARTIFACTS_DIR}"
        f" (error classes -> {errorgen.MODULE_PATH.name})"
    )
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from .chain import Chain
    from .deploy import deploy_suite

    chain = Chain.from_name(args.rpc)
    try:
        suite = deploy_suite(chain, fee_bps=args.fee_bps, manifest=args.manifest, write=not args.no_manifest)
        print(f"chain {chain.chain_id} ({chain.kind})")
        for name, address in suite.addresses.items():
            state = "deployed" if name in suite.deployed else "reused"
            print(f"  {name:<24} {address}  {state}")
        if not suite.contracts:
            print("  (the suite has no contracts yet)")
    finally:
        chain.close()
    return 0


def _cmd_chain(args: argparse.Namespace) -> int:
    from .chain import Chain

    chain = Chain.anvil(accounts=args.accounts, port=args.port)
    print(f"anvil listening on {chain.url} (chain id {chain.chain_id}); Ctrl-C stops it")
    for account in chain.accounts:
        balance = chain.w3.eth.get_balance(account.address)
        print(f"  {account.address}  {balance / 10**18:,.0f} ETH")
    try:
        while chain._process is not None and chain._process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        chain.close()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import runpy

    script = Path(__file__).resolve().parent.parent / "scripts" / "demo_trade.py"
    if not script.is_file():
        raise AgentMarketError(f"{script} not found (the demo ships with the source checkout)")
    sys.argv = [str(script)] + (["--chain", args.chain] if args.chain else [])
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _cmd_surveil(args: argparse.Namespace) -> int:
    import json

    from .chain import Chain
    from .market import _load_suite
    from .surveillance import surveil

    chain = Chain.from_name(args.chain)
    try:
        suite = _load_suite(chain, args.manifest)
        report = surveil(suite, args.from_block, args.to_block)
    finally:
        chain.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.to_markdown(), end="")
    if args.html:
        Path(args.html).write_text(report.to_html())
    if args.png and report.pricing:
        report.write_png(Path(args.png))
    return 0


def _cmd_relay(args: argparse.Namespace) -> int:
    from .relay.app import RelaySettings
    from .relay.ratelimit import Limit
    from .relay.server import RelayConfig, serve

    settings = RelaySettings(
        client_rate=Limit(args.client_rate, args.client_rate * 2),
        maker_rate=Limit(args.maker_rate, args.maker_rate * 5),
    )
    cfg = RelayConfig(
        db=args.db,
        chain=args.chain,
        host=args.host,
        port=args.port,
        offerbook=args.offerbook,
        registry=args.registry,
        from_block=args.from_block,
        confirmations=args.confirmations,
        poll_interval=args.poll_interval,
        settings=settings,
    )
    serve(cfg, announce=lambda line: print(line, flush=True))
    return 0


def _cmd_mcp(args: argparse.Namespace) -> int:
    from .mcp import serve

    serve(
        chain=args.chain,
        keystore=args.agent,
        relay=args.relay,
        manifest=args.manifest,
        mandate_file=args.mandate,
        http_port=args.http,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentmarket", description="Settlement rails for autonomous agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile contracts/ into agentmarket/artifacts/")
    p.add_argument("--check", action="store_true", help="recompile in a temp dir and fail on any difference")
    p.add_argument("--no-cache", action="store_true", help="ignore the compile cache")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("deploy", help="deploy the suite (embedded chain unless --rpc)")
    p.add_argument(
        "--rpc", help="JSON-RPC URL, or 'anvil'; keys from $AGENTMARKET_PRIVATE_KEYS or a keystore"
    )
    p.add_argument("--fee-bps", type=int, default=50, help="protocol fee in basis points (max 500)")
    p.add_argument("--manifest", help="manifest path (default deployments/<chainId>.json)")
    p.add_argument("--no-manifest", action="store_true", help="do not write a manifest")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser("chain", help="run anvil in the foreground and print its accounts (no keys)")
    p.add_argument("--port", type=int, default=8545)
    p.add_argument("--accounts", type=int, default=10)
    p.set_defaults(func=_cmd_chain)

    p = sub.add_parser("surveil", help="screen a block range for collusion and exclusion (events only)")
    p.add_argument("--chain", help="anvil or a JSON-RPC URL where the suite is deployed (manifest)")
    p.add_argument("--manifest", help="manifest path (default deployments/<chainId>.json)")
    p.add_argument("--from-block", type=int, default=0)
    p.add_argument("--to-block", type=int, default=None, help="default: latest")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", help="also write the report as HTML to this path")
    p.add_argument("--png", help="also write the plots to this PNG")
    p.set_defaults(func=_cmd_surveil)

    p = sub.add_parser("demo", help="run the demo trade")
    p.add_argument("--chain", help="embedded (default), anvil, or a JSON-RPC URL")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("relay", help="run the offer relay (HTTP API + database + chain indexer)")
    p.add_argument(
        "--db", default="sqlite:///agentmarket-relay.db", help="sqlite:///path or postgresql://..."
    )
    p.add_argument("--chain", help="JSON-RPC URL of the chain (default: start anvil and deploy the suite)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--offerbook", help="OfferBook address (default: from deployments/<chainId>.json)")
    p.add_argument("--registry", help="ReputationRegistry address (default: from the manifest)")
    p.add_argument(
        "--from-block", type=int, help="first block to index (default: the OfferBook's deploy block)"
    )
    p.add_argument("--confirmations", type=int, default=0, help="blocks an event must be buried under")
    p.add_argument("--poll-interval", type=float, default=0.25, help="seconds between indexer polls")
    p.add_argument("--client-rate", type=float, default=200.0, help="requests/s per client address (0: off)")
    p.add_argument("--maker-rate", type=float, default=20.0, help="valid posts/s per maker (0: off)")
    p.set_defaults(func=_cmd_relay)

    p = sub.add_parser("mcp", help="serve an agent's wallet and market tools over MCP (stdio by default)")
    p.add_argument("--agent", metavar="KEYSTORE", help="encrypted keystore ($AGENTMARKET_KEYSTORE_PASSWORD)")
    p.add_argument("--chain", help="embedded (default), anvil, or a JSON-RPC URL (suite from --manifest)")
    p.add_argument(
        "--relay", metavar="URL", help="offer relay to search besides the chain (HTTP GET /offers)"
    )
    p.add_argument(
        "--manifest", help="deployment manifest for a URL chain (default deployments/<chainId>.json)"
    )
    p.add_argument("--mandate", metavar="FILE", help="JSON spend mandate (budget, max_per_deal, ...)")
    p.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT instead")
    p.set_defaults(func=_cmd_mcp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AgentMarketError as exc:
        first = (str(exc).splitlines() or [""])[0]
        print(f"agentmarket: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

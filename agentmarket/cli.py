"""The ``agentmarket`` command: compile, deploy, run a chain, run the demo, surveil, relay, MCP.

Every command takes ``--json`` (before or after the command name): results are printed as one JSON
document on stdout, errors as a JSON object on stderr. User errors (an unreachable node, no account to
send from, a bad path, bad arguments) print one line naming the cause and the fix and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .errors import AgentMarketError, ConfigError


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print ``document`` as JSON under ``--json``, else ``text``."""
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    else:
        print(text)


def _cmd_compile(args: argparse.Namespace) -> int:
    from . import compiler, errorgen

    root = compiler.project_root(Path(args.project), explicit=True) if args.project else None
    out = Path(args.out) if args.out else (root / "artifacts" if root is not None else compiler.ARTIFACTS_DIR)
    tree = root if root is not None else compiler.project_root()
    # contracts/test/ (mocks, attackers) is a separate test build in <tree>/tests/artifacts/, never shipped
    test = compiler.has_test_sources(tree)
    if args.check:
        problems = compiler.check_artifacts(root, out)
        if out == compiler.ARTIFACTS_DIR:  # the package's own error classes follow its artifacts
            problems += errorgen.check_module(errorgen.shipped_artifacts())
        if test:
            problems += [f"test build: {line}" for line in compiler.check_artifacts(tree, test=True)]
        if args.json:
            print(json.dumps({"match": not problems, "problems": problems}, indent=2))
            return 1 if problems else 0
        if problems:
            for line in problems:
                print(f"artifact mismatch: {line}", file=sys.stderr)
            print(
                "fix: run `agentmarket compile` and commit agentmarket/artifacts/ (and tests/artifacts/) and "
                f"agentmarket/{errorgen.MODULE_PATH.name}",
                file=sys.stderr,
            )
            return 1
        print(
            f"artifacts and {errorgen.MODULE_PATH.name} match a fresh compile of contracts/"
            + (" (package and test builds)" if test else "")
        )
        return 0
    started = time.perf_counter()
    artifacts = compiler.compile_sources(root, use_cache=not args.no_cache)
    written = compiler.write_artifacts(artifacts, out)
    if out == compiler.ARTIFACTS_DIR:
        errorgen.write_module(artifacts)
    doc: dict[str, object] = {"contracts": sorted(p.stem for p in written), "directory": str(out)}
    text = f"compiled {len(written)} contracts -> {out}"
    if test:
        target = compiler.test_artifacts_dir(tree)
        mocks = compiler.write_artifacts(
            compiler.compile_sources(tree, use_cache=not args.no_cache, test=True), target
        )
        doc["test_contracts"], doc["test_directory"] = sorted(p.stem for p in mocks), str(target)
        text += f"; {len(mocks)} test contracts (not shipped) -> {target}"
    seconds = time.perf_counter() - started
    doc["seconds"] = round(seconds, 3)
    _emit(args, doc, f"{text} in {seconds:.2f}s")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from .chain import Chain
    from .deploy import deploy_suite

    chain = Chain.from_name(args.rpc)
    try:
        suite = deploy_suite(chain, fee_bps=args.fee_bps, manifest=args.manifest, write=not args.no_manifest)
        lines = [f"chain {chain.chain_id} ({chain.kind})"]
        for name, address in suite.addresses.items():
            state = "deployed" if name in suite.deployed else "reused"
            lines.append(f"  {name:<24} {address}  {state}")
        document = {
            "chainId": chain.chain_id,
            "kind": chain.kind,
            "contracts": {
                name: {
                    "address": address,
                    "block": suite.manifest["contracts"][name].get("block"),
                    "deployed": name in suite.deployed,
                }
                for name, address in suite.addresses.items()
            },
        }
        _emit(args, document, "\n".join(lines))
    finally:
        chain.close()
    return 0


def _cmd_chain(args: argparse.Namespace) -> int:
    from .chain import Chain

    chain = Chain.anvil(accounts=args.accounts, port=args.port)
    balances = {a.address: int(chain.w3.eth.get_balance(a.address)) for a in chain.accounts}
    text = f"anvil listening on {chain.url} (chain id {chain.chain_id}); Ctrl-C stops it\n" + "\n".join(
        f"  {address}  {wei / 10**18:,.0f} ETH" for address, wei in balances.items()
    )
    _emit(args, {"url": chain.url, "chainId": chain.chain_id, "accounts": balances}, text)
    sys.stdout.flush()
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
        raise ConfigError(
            f"{script} not found (the demo ships with the source checkout: run it from a clone of agentmarket)"
        )
    sys.argv = (
        [str(script)] + (["--chain", args.chain] if args.chain else []) + (["--json"] if args.json else [])
    )
    # run the script's main() here (not as __main__) so its errors reach main(): one line, or JSON
    runpy.run_path(str(script), run_name="agentmarket_demo")["main"]()
    return 0


def _cmd_surveil(args: argparse.Namespace) -> int:
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
    from .relay.db import normalise_url
    from .relay.ratelimit import Limit
    from .relay.server import RelayConfig, serve

    normalise_url(args.db)  # a bad database URL fails here, before a chain is started or a contract deployed
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
    if args.json:
        serve(cfg, announce=lambda line: print(json.dumps({"relay": line.strip()}), flush=True))
    else:
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


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors come out as a JSON object (exit status 2) when ``--json`` was given."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            print(json.dumps({"error": "UsageError", "message": message}), file=sys.stderr)
            raise SystemExit(2)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    # --json is accepted before the command and after it (SUPPRESS: the sub-command's default must not
    # overwrite a --json given before the command name)
    common = _Parser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print results (and errors) as JSON"
    )
    parser = _Parser(
        prog="agentmarket", description="Settlement rails for autonomous agents.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"agentmarket {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", parents=[common], help="compile contracts/ into agentmarket/artifacts/")
    p.add_argument(
        "--project",
        metavar="DIR",
        help="your own project: compiles DIR/contracts/*.sol into DIR/artifacts (default: this checkout)",
    )
    p.add_argument("--out", metavar="DIR", help="where to write the artifacts")
    p.add_argument("--check", action="store_true", help="recompile in a temp dir and fail on any difference")
    p.add_argument("--no-cache", action="store_true", help="ignore the compile cache")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("deploy", parents=[common], help="deploy the suite (embedded chain unless --rpc)")
    p.add_argument(
        "--rpc", help="JSON-RPC URL, or 'anvil'; keys from $AGENTMARKET_PRIVATE_KEYS or a keystore"
    )
    p.add_argument("--fee-bps", type=int, default=50, help="protocol fee in basis points (max 500)")
    p.add_argument("--manifest", help="manifest path (default deployments/<chainId>.json)")
    p.add_argument("--no-manifest", action="store_true", help="do not write a manifest")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser(
        "chain", parents=[common], help="run anvil in the foreground and print its accounts (no keys)"
    )
    p.add_argument("--port", type=int, default=8545)
    p.add_argument("--accounts", type=int, default=10)
    p.set_defaults(func=_cmd_chain)

    p = sub.add_parser(
        "surveil", parents=[common], help="screen a block range for collusion and exclusion (events only)"
    )
    p.add_argument("--chain", help="anvil or a JSON-RPC URL where the suite is deployed (manifest)")
    p.add_argument("--manifest", help="manifest path (default deployments/<chainId>.json)")
    p.add_argument("--from-block", type=int, help="default: the earliest deployment block in the manifest")
    p.add_argument("--to-block", type=int, default=None, help="default: latest")
    p.add_argument("--html", help="also write the report as HTML to this path")
    p.add_argument("--png", help="also write the plots to this PNG")
    p.set_defaults(func=_cmd_surveil)

    p = sub.add_parser("demo", parents=[common], help="run the demo trade")
    p.add_argument("--chain", help="embedded (default), anvil, or a JSON-RPC URL")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "relay", parents=[common], help="run the offer relay (HTTP API + database + chain indexer)"
    )
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

    p = sub.add_parser(
        "mcp", parents=[common], help="serve an agent's wallet and market tools over MCP (stdio by default)"
    )
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
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in argv
    args = parser.parse_args(argv)
    args.json = bool(getattr(args, "json", False))  # absent unless given (see build_parser)
    try:
        return int(args.func(args))
    except (AgentMarketError, OSError) as exc:
        # user errors (typed, or a path that cannot be read or written): one line, no traceback
        first = (str(exc).splitlines() or [""])[0]
        if args.json:
            print(json.dumps({"error": type(exc).__name__, "message": first}), file=sys.stderr)
        else:
            print(f"agentmarket: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

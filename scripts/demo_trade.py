#!/usr/bin/env python3
"""Demo: deploy the agentmarket suite on the embedded chain and print what was deployed."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.deploy import deploy_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    args = parser.parse_args()
    console = Console()
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=False)
        table = Table(title=f"agentmarket suite on chain {chain.chain_id} ({chain.kind})")
        for column in ("contract", "address", "deploy tx", "gas"):
            table.add_column(column)
        for name, entry in suite.manifest["contracts"].items():
            table.add_row(name, entry["address"], entry["txHash"][:18] + "…", f"{entry['gasUsed']:,}")
        console.print(table)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measure every gas scenario on the embedded chain; print a table; with --write update gas-snapshot.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ lives beside the package, not in it
from tools.gas import SNAPSHOT_FILE, measure, read_snapshot, write_snapshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write the figures to {SNAPSHOT_FILE}")
    args = parser.parse_args()
    committed = read_snapshot()
    measured = measure()
    table = Table(title="full-transaction gasUsed (embedded chain)")
    for column in ("key", "gas", "committed", "change"):
        table.add_column(column, justify="left" if column == "key" else "right")
    for key, gas in measured.items():
        old = committed.get(key)
        change = "new" if old is None else f"{gas - old:+d}"
        table.add_row(key, f"{gas:,}", "" if old is None else f"{old:,}", change)
    Console().print(table)
    if args.write:
        write_snapshot(measured)
        print(f"wrote {SNAPSHOT_FILE} ({len(measured)} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

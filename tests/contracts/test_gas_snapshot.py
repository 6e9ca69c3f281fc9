"""Re-measure every gas scenario; fail when a figure rises above gas-snapshot.json, naming the key."""

from __future__ import annotations

from pathlib import Path

from tools.gas import CODE_SIZE_LIMIT, measure, read_snapshot, regressions

ROOT = Path(__file__).resolve().parents[2]


def test_no_gas_regression():
    """Gas and deployed bytecode size (``bytecode.<Contract>``) may not rise above the committed figures."""
    committed = read_snapshot(ROOT / "gas-snapshot.json")
    measured = measure()
    problems = regressions(measured, committed)
    assert not problems, "gas or bytecode size rose above gas-snapshot.json:\n" + "\n".join(problems)
    sizes = {k: v for k, v in measured.items() if k.startswith("bytecode.")}
    assert sizes, "no bytecode.<Contract> figures measured"
    assert all(v <= CODE_SIZE_LIMIT for v in sizes.values()), f"over the EIP-170 limit: {sizes}"


def test_regressions_names_the_key():
    assert regressions({"a.b": 101, "c.d": 5}, {"a.b": 100, "c.d": 9}) == ["a.b: 101 > committed 100 (+1)"]
    assert regressions({"new.key": 1}, {}) == [
        "new.key: 1 measured but not in gas-snapshot.json (run `make gas`)"
    ]

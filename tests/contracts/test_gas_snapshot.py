"""Re-measure every gas scenario; fail when a figure rises above gas-snapshot.json, naming the key."""

from __future__ import annotations

from pathlib import Path

from agentmarket.gas import measure, read_snapshot, regressions

ROOT = Path(__file__).resolve().parents[2]


def test_no_gas_regression():
    committed = read_snapshot(ROOT / "gas-snapshot.json")
    problems = regressions(measure(), committed)
    assert not problems, "gas rose above gas-snapshot.json:\n" + "\n".join(problems)


def test_regressions_names_the_key():
    assert regressions({"a.b": 101, "c.d": 5}, {"a.b": 100, "c.d": 9}) == ["a.b: 101 > committed 100 (+1)"]
    assert regressions({"new.key": 1}, {}) == [
        "new.key: 1 measured but not in gas-snapshot.json (run `make gas`)"
    ]

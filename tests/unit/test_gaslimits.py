"""Gas limits from the snapshot: computed once per (key, count), and a registered figure replaces a cached one."""

from __future__ import annotations

import math

from agentmarket.gaslimits import GasTable


def test_limit_is_figure_times_margin_plus_headroom_and_cached() -> None:
    table = GasTable({"op": 40_000}, margin=1.5, headroom=1_000)
    assert table.limit("op") == math.ceil(40_000 * 1.5) + 1_000
    assert table.limit("op", 3) == math.ceil(120_000 * 1.5) + 1_000
    assert table.limit("op") == table.limit("op")  # the cached answer is the computed one
    assert table.limit("missing") is None


def test_register_replaces_a_cached_limit_and_a_cached_miss() -> None:
    table = GasTable({"op": 40_000}, margin=1.0, headroom=0)
    assert table.limit("op") == 40_000 and table.limit("new") is None
    table.register("op", 50_000)
    table.register("new", 21_000)
    assert table.limit("op") == 50_000
    assert table.limit("new", 2) == 42_000

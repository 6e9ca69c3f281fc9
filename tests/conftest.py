"""Shared fixtures: an embedded chain and an anvil node, each with per-test snapshot isolation.

``chain``/``suite`` run on the in-process eth-tester chain (one per xdist worker, deployed once);
``anvil``/``anvil_suite`` on a local anvil started once per worker. Every test starts from the same
snapshot and is reverted afterwards, so tests never see each other's state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import register_test_errors
from hypothesis import HealthCheck, settings

from agentmarket.chain import Chain
from agentmarket.deploy import Suite, deploy_suite

register_test_errors()  # mocks' custom errors decode in tests; they are not in the shipped table

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long",
    max_examples=1000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# Both ways of choosing a profile work: $HYPOTHESIS_PROFILE here (at conftest import), and hypothesis'
# own `--hypothesis-profile=NAME` option, which its pytest plugin applies later (pytest_configure) and so
# wins. The profiles are registered first, so either name resolves. Property machines read the active
# profile's name (tests/property/machine.py) to size their runs.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# -- property machine report ----------------------------------------------------------------------------
# A machine test records {"machine", "profile", "examples", "steps", ...} in its user_properties; the
# reports travel to the xdist controller with the test report and are printed at the end of the session.
_MACHINE_REPORTS: list[dict[str, Any]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "machine_stats":
            _MACHINE_REPORTS.append(json.loads(value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MACHINE_REPORTS:
        return
    terminalreporter.section("property machines")
    for r in sorted(_MACHINE_REPORTS, key=lambda r: r["machine"]):
        terminalreporter.write_line(
            f"{r['machine']:<22} profile={r['profile']:<8} examples={r['examples']:>5} steps={r['steps']:>7} "
            f"(settings {r['max_examples']}x{r['step_count']}) txs={r['txs']:>7} (reverted as predicted "
            f"{r.get('reverted', 0)}) {r['seconds']:.1f}s"
        )
        if r.get("paths"):
            terminalreporter.write_line("    " + ", ".join(f"{k} {v}" for k, v in sorted(r["paths"].items())))


@pytest.fixture(scope="session")
def _embedded() -> Iterator[tuple[Chain, Suite]]:
    chain = Chain.embedded(accounts=10)
    suite = deploy_suite(chain, write=False, reuse=False)
    yield chain, suite


@pytest.fixture
def chain(_embedded: tuple[Chain, Suite]) -> Iterator[Chain]:
    """The embedded chain with the suite deployed, reverted after the test."""
    chain = _embedded[0]
    snap = chain.snapshot()
    _catch_up_with_the_clock(chain)
    yield chain
    chain.revert(snap)


def _catch_up_with_the_clock(chain: Chain) -> None:
    """Mine one block at wall-clock time after a revert.

    Both backends stamp new blocks with max(parent + 1, wall clock). A snapshot taken minutes ago
    would otherwise make ``chain.now()`` lag the time the test's next transaction runs at, so
    deadlines computed from ``now()`` would already be past (flaky tests, worse under load).
    """
    wall = int(time.time())
    if chain.now() < wall:
        chain.travel_to(wall)


@pytest.fixture
def suite(chain: Chain, _embedded: tuple[Chain, Suite]) -> Suite:
    """The deployed suite on the embedded chain (state reverted after the test)."""
    return _embedded[1]


@pytest.fixture(scope="session")
def _anvil() -> Iterator[tuple[Chain, Suite]]:
    chain = Chain.anvil(accounts=10)
    try:
        suite = deploy_suite(chain, write=False, reuse=False)
        yield chain, suite
    finally:
        chain.close()


@pytest.fixture
def anvil(_anvil: tuple[Chain, Suite]) -> Iterator[Chain]:
    """A local anvil node with the suite deployed, reverted after the test."""
    chain = _anvil[0]
    snap = chain.snapshot()
    _catch_up_with_the_clock(chain)
    yield chain
    chain.revert(snap)


@pytest.fixture
def anvil_suite(anvil: Chain, _anvil: tuple[Chain, Suite]) -> Suite:
    return _anvil[1]


@pytest.fixture(params=["embedded", "anvil"])
def any_chain(request: pytest.FixtureRequest) -> Chain:
    """Runs the test once on each backend."""
    if request.param == "anvil":
        return request.getfixturevalue("anvil")  # type: ignore[no-any-return]
    return request.getfixturevalue("chain")  # type: ignore[no-any-return]

"""Shared fixtures: an embedded chain and an anvil node, each with per-test snapshot isolation.

``chain``/``suite`` run on the in-process eth-tester chain (one per xdist worker, deployed once);
``anvil``/``anvil_suite`` on a local anvil started once per worker. Every test starts from the same
snapshot and is reverted afterwards, so tests never see each other's state.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from agentmarket.chain import Chain
from agentmarket.deploy import Suite, deploy_suite

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=1000, stateful_step_count=60, deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
    yield chain
    chain.revert(snap)


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

"""Fixtures of the service tests (gateway helpers in service_helpers.py): a real anvil with the suite, real databases (a SQLite file; a throwaway
PostgreSQL server started from the installed binaries) and real relay processes (uvicorn on 127.0.0.1).

Every test module that takes ``db_kind`` runs once per database; the PostgreSQL leg is skipped only when
the PostgreSQL binaries are not installed (CI installs them: see .ci/run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from service_helpers import ETHER, GatewayProcess, make_agent

from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.deploy import Suite, deploy_suite
from agentmarket.relay.pgserver import PostgresServer, pg_bindir
from agentmarket.relay.process import RelayProcess


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed (apt-get install -y postgresql)")
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def new_db(
    db_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """Makes a fresh, empty database of the module's kind and returns its URL."""
    if db_kind == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg_server")
        return pg.new_database
    base = tmp_path_factory.mktemp("relaydb")
    counter = iter(range(10**6))
    return lambda: f"sqlite:///{base / f'relay{next(counter)}.db'}"


@pytest.fixture(scope="module")
def market() -> Iterator[tuple[Chain, Suite]]:
    """The module's own anvil with the suite deployed (no snapshots shared with other modules)."""
    chain = Chain.anvil(accounts=10)
    try:
        yield chain, deploy_suite(chain, write=False, reuse=False)
    finally:
        chain.close()


@pytest.fixture(scope="module")
def spawn(
    market: tuple[Chain, Suite], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., RelayProcess]]:
    """Starts relay processes on the module's chain (stopped at the end of the module)."""
    chain, suite = market
    started: list[RelayProcess] = []
    logs = tmp_path_factory.mktemp("relaylogs")

    def start(db: str, *extra: str, port: int | None = None) -> RelayProcess:
        rp = RelayProcess(
            db,
            str(chain.url),
            suite["OfferBook"].address,
            suite["ReputationRegistry"].address,
            port=port,
            extra=["--poll-interval", "0.1", *extra],
            log=Path(logs) / f"relay{len(started)}.log",
        )
        started.append(rp)
        return rp.start()

    yield start
    for rp in started:
        rp.stop()


@pytest.fixture
def gateway_proc(anvil: Chain, anvil_suite: Suite, tmp_path: Path) -> Iterator[GatewayProcess]:
    payee = Account.create()
    anvil.transactor.send_value(anvil.accounts[0], payee.address, 10 * ETHER)
    proc = GatewayProcess(
        anvil, anvil_suite, payee, tmp_path / "gateway.sqlite", log=tmp_path / "gateway.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def buyer(anvil: Chain, anvil_suite: Suite) -> Agent:
    """A funded agent with no mandate limits."""
    return make_agent(anvil, anvil_suite)

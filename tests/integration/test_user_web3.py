"""A user's own ``Web3`` is honoured by every path, the batched fast path included.

A real HTTP proxy on 127.0.0.1 answers 401 to any request without ``Authorization: Bearer <token>``;
anvil sits behind it. A ``Market`` built from a ``Web3`` whose provider carries that header (and, in the
second test, a middleware of the user's own) must trade end to end, with no request refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from rpcproxy import RPCProxy
from web3 import Web3
from web3.middleware import Web3Middleware

from agentmarket import Market
from agentmarket.chain import KEYS_ENV, Chain
from agentmarket.errors import ChainUnavailable
from agentmarket.rpc import DirectTransport, HTTPTransport
from agentmarket.types import DealState

pytestmark = pytest.mark.anvil

HEADER = ("Authorization", "Bearer s3cret-token")
FINNEY = 10**15


def _trade(market: Market) -> None:
    buyer, seller = market.agent("buyer"), market.agent("seller")
    deal = buyer.buy(seller, 20 * FINNEY, resource="gpu-hour", units=2)
    deal = seller.escrow.submit(deal, b"2 GPU-hours")
    deal = buyer.escrow.accept(deal)
    assert deal.state == DealState.ACCEPTED
    assert market.escrow.deal(deal.id).state == DealState.ACCEPTED


def _user_web3(url: str) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"headers": {HEADER[0]: HEADER[1]}, "timeout": 30}))


def test_auth_headers_reach_the_node_on_the_fast_path(
    anvil: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, "0x" + anvil.accounts[0].key.hex())
    monkeypatch.chdir(tmp_path)  # the manifest of a URL chain is written under ./deployments
    with RPCProxy(str(anvil.url), require_header=HEADER) as proxy:
        # the control: without the header the proxy refuses, and the error says so without a traceback
        with pytest.raises(ChainUnavailable, match="cannot reach"):
            Chain.from_web3(Web3(Web3.HTTPProvider(proxy.url)))
        refused = proxy.unauthorised
        assert refused > 0
        with Market.connect(_user_web3(proxy.url)) as market:
            assert isinstance(market.chain.transactor.transport, HTTPTransport)
            _trade(market)
        assert proxy.unauthorised == refused  # nothing the market sent was refused
        # the sends went through the proxy (on anvil's automine most as eth_sendRawTransactionSync)
        sends = proxy.counts["eth_sendRawTransaction"] + proxy.counts["eth_sendRawTransactionSync"]
        assert sends >= 3


class _Recorder(Web3Middleware):
    """A user's middleware: records every method it sees (a stand-in for logging, signing, auth)."""

    seen: ClassVar[list[str]] = []

    def request_processor(self, method: Any, params: Any) -> Any:
        _Recorder.seen.append(str(method))
        return method, params


def test_the_users_middleware_sees_the_fast_path_requests(anvil: Chain, tmp_path: Path) -> None:
    with RPCProxy(str(anvil.url), require_header=HEADER) as proxy:
        w3 = _user_web3(proxy.url)
        w3.middleware_onion.add(_Recorder, "recorder")
        _Recorder.seen.clear()
        chain = Chain.from_web3(w3, keys=["0x" + anvil.accounts[0].key.hex()])
        with Market.connect(chain, manifest=tmp_path / "manifest.json") as market:
            assert isinstance(market.chain.transactor.transport, DirectTransport)
            before = _Recorder.seen.count("eth_sendRawTransaction")
            _trade(market)
        assert proxy.unauthorised == 0
        # every transaction the node received passed through the user's middleware
        seen = _Recorder.seen[before:]
        assert seen.count("eth_sendRawTransaction") + seen.count("eth_sendRawTransactionSync") >= 3
        assert _Recorder.seen.count("eth_sendRawTransaction") == proxy.counts["eth_sendRawTransaction"]

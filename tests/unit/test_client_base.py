"""Every contract family's client is a ContractClient: one base, one naming scheme, one set of defaults."""

from __future__ import annotations

import inspect
import warnings

import pytest

from agentmarket.agent import CLIENTS, Agent
from agentmarket.chain import Chain
from agentmarket.clients.auctions import AuctionClient
from agentmarket.clients.base import ContractClient
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite


def test_every_client_shares_one_base_one_name_and_one_approve_default():
    classes = [cls for cls, _ in CLIENTS.values()]
    assert len(classes) == 6 and all(issubclass(cls, ContractClient) for cls in classes)
    for cls in classes:
        assert "as_account" not in vars(cls) or cls is ChannelClient  # the one deprecated alias
        assert (
            inspect.signature(cls.as_).parameters["account"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            approve = inspect.signature(fn).parameters.get("approve")
            if approve is not None and not name.startswith("_"):  # public entry points
                assert approve.default is False, f"{cls.__name__}.{name} approves by default"


def test_clients_know_their_contract_and_account_apart(chain: Chain, suite: Suite):
    payer, payee = chain.accounts[1], chain.accounts[2]
    channels = ChannelClient.from_suite(suite, payer)
    assert channels.address == suite["PaymentChannels"].address  # the contract, as for every client
    assert channels.account_address == payer.address
    other = channels.as_(payee)
    assert other.account_address == payee.address and channels.account_address == payer.address
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        legacy = channels.as_account(payee)
    assert legacy.account_address == payee.address
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    auctions = AuctionClient.from_suite(suite, payer)
    assert auctions.as_(payee).salts is auctions.salts  # secrets stay shared across clones
    assert ContractClient.__repr__(channels).count("0x") == 2  # addresses only, no key


def test_agent_clients_are_typed_properties_not_attribute_magic(chain: Chain, suite: Suite):
    agent = Agent(chain.accounts[3], chain, suite)
    for family, (cls, _) in CLIENTS.items():
        assert isinstance(inspect.getattr_static(Agent, family), property)
        assert isinstance(getattr(agent, family), cls)
        assert agent.client(family) is getattr(agent, family)
    assert "__getattr__" not in vars(Agent)
    with pytest.raises(AttributeError):
        agent.client("nonexistent")

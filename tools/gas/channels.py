"""Gas scenarios of PaymentChannels (full-transaction gasUsed on the embedded chain).

Payer and payee are funded EOAs that have sent transactions before (realistic warm-ish accounts); every
channel is ETH unless the key says otherwise. ``channel.batch_claim_per_channel`` is the gasUsed of one
``claimMany`` over 10 channels (5 payers x 2 channels, one payee) divided by 10.
"""

from __future__ import annotations

from typing import Any

from agentmarket.clients.channels import ChannelClient
from agentmarket.types import ETH

from . import GasEnv, scenario

DEPOSIT = 10**18
BATCH = 10


def _gas(env: GasEnv, account: Any, call: Any, value: int = 0) -> int:
    return int(env.chain.transactor.transact(account, call, value=value)["gasUsed"])


def _clients(env: GasEnv) -> tuple[ChannelClient, ChannelClient]:
    payer, payee = env.chain.accounts[1], env.chain.accounts[2]
    client = ChannelClient.from_suite(env.suite, payer)
    return client, client.as_(payee)


@scenario("channel.open_eth")
def open_eth(env: GasEnv) -> int:
    payer, payee = _clients(env)
    contract = env.suite["PaymentChannels"]
    key = (payer.account_address, payee.account_address, ETH, 1)
    return _gas(env, payer.account, contract.functions.open(key, DEPOSIT, env.chain.now() + 86_400), DEPOSIT)


@scenario("channel.claim")
def claim(env: GasEnv) -> int:
    payer, payee = _clients(env)
    ch = payer.open(payee.account_address, DEPOSIT, ttl=86_400, salt=1)
    v = payer.sign_voucher(ch, DEPOSIT // 10)
    return _gas(
        env, payee.account, env.suite["PaymentChannels"].functions.claim(ch.key, v.amount, v.signature)
    )


@scenario("channel.close")
def close(env: GasEnv) -> int:
    payer, payee = _clients(env)
    ch = payer.open(payee.account_address, DEPOSIT, ttl=86_400, salt=1)
    v = payer.sign_voucher(ch, DEPOSIT // 3)
    return _gas(
        env, payee.account, env.suite["PaymentChannels"].functions.close(ch.key, v.amount, v.signature)
    )


@scenario("channel.batch_claim_per_channel")
def batch_claim(env: GasEnv) -> int:
    payee_account = env.chain.accounts[2]
    items = []
    for i in range(BATCH):
        payer = ChannelClient.from_suite(env.suite, env.chain.accounts[3 + i % 5])
        ch = payer.open(payee_account.address, DEPOSIT, ttl=86_400, salt=i)
        v = payer.sign_voucher(ch, DEPOSIT // 10)
        items.append((ch.key, v.amount, v.signature))
    total = _gas(env, payee_account, env.suite["PaymentChannels"].functions.claimMany(items))
    return total // BATCH


@scenario("channel.reclaim")
def reclaim(env: GasEnv) -> int:
    payer, payee = _clients(env)
    ch = payer.open(payee.account_address, DEPOSIT, ttl=100, salt=1)
    env.chain.advance_time(101)
    return _gas(env, payer.account, env.suite["PaymentChannels"].functions.reclaim(ch.key))


@scenario("channel.top_up")
def top_up(env: GasEnv) -> int:
    payer, payee = _clients(env)
    ch = payer.open(payee.account_address, DEPOSIT, ttl=100, salt=1)
    return _gas(
        env,
        payer.account,
        env.suite["PaymentChannels"].functions.topUp(ch.key, DEPOSIT, ch.expiry + 3600),
        DEPOSIT,
    )


@scenario("channel.cooperative_close")
def cooperative_close(env: GasEnv) -> int:
    payer, payee = _clients(env)
    ch = payer.open(payee.account_address, DEPOSIT, ttl=86_400, salt=1)
    # the payee's consent as its client signs it (no voucher store here: nothing was accepted yet)
    deadline = env.chain.now() + 600
    payee_sig = payee.signer.sign_close(ch.id, DEPOSIT // 2, deadline)
    fn = env.suite["PaymentChannels"].functions.cooperativeClose(
        ch.key, DEPOSIT // 2, deadline, b"", payee_sig
    )
    return _gas(env, payer.account, fn)

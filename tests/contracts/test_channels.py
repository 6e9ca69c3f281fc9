"""PaymentChannels: every path and revert, replay protection, expiry boundaries, hostile receivers,
ERC-1271 payers, fee-on-transfer and blocking tokens, and solvency after every step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from helpers import load_artifact

from agentmarket import errors
from agentmarket.clients.channels import ETH, Channel, ChannelClient, ChannelStatus
from agentmarket.vouchers import VoucherDomain, VoucherSigner, VoucherStore

E = errors.revert_class
D = 10**18  # default deposit


@dataclass
class Env:
    chain: Any
    pc: Any  # PaymentChannels contract
    payer: ChannelClient
    payee: ChannelClient
    other: ChannelClient

    def send(self, account: Any, fn: Any, value: int = 0, gas: int = 1_000_000) -> Any:
        """Simulate (typed revert), then send with a fixed gas limit (no slow estimation on py-evm)."""
        self.chain.transactor.call(fn, sender=account.address, value=value)
        return self.chain.transactor.transact(account, fn, value=value, gas=gas)

    def send_at(self, timestamp: int, account: Any, fn: Any, value: int = 0) -> Any:
        """Mine ``fn`` in a block at exactly ``timestamp``. A revert surfaces as its typed error when the
        node can replay it, else as TransactionReverted (eth-tester replays at another timestamp)."""
        self.chain.set_next_timestamp(timestamp)
        return self.chain.transactor.transact(account, fn, value=value, gas=1_000_000)

    def deploy(self, name: str, *args: Any) -> Any:
        artifact = load_artifact(name)
        receipt = self.chain.transactor.deploy(self.chain.accounts[0], artifact, *args)
        return self.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    def open(self, deposit: int = D, ttl: int = 3600, salt: int = 1, **kw: Any) -> Channel:
        return self.payer.open(self.payee.account_address, deposit, ttl=ttl, salt=salt, **kw)


@pytest.fixture
def env(chain, suite) -> Env:
    client = ChannelClient.from_suite(suite, chain.accounts[1])
    return Env(
        chain,
        suite["PaymentChannels"],
        client,
        client.as_(chain.accounts[2]),
        client.as_(chain.accounts[3]),
    )


def assert_solvent(env: Env, channels: list[Channel], asset: str = ETH, token: Any = None) -> None:
    """docs/design.md §6.1/§6.8: balance == sum(open deposit - claimed) + credits; claimed <= deposit."""
    locked = 0
    for ch in channels:
        status, deposit, claimed, _ = env.payer.onchain(ch.id)
        assert claimed <= deposit
        if status == ChannelStatus.OPEN:
            locked += deposit - claimed
    credits = env.pc.functions.creditTotal(asset).call()
    if asset == ETH:
        balance = env.chain.w3.eth.get_balance(env.pc.address)
    else:
        balance = token.functions.balanceOf(env.pc.address).call()
    assert balance == locked + credits


# -- open ----------------------------------------------------------------------------------------------


def test_open_eth_emits_and_views_match(env):
    ch = env.open()
    assert ch.status == ChannelStatus.OPEN and ch.deposit == D and ch.claimed == 0
    assert env.payer.onchain(ch.id) == (ChannelStatus.OPEN, D, 0, ch.expiry)
    assert env.pc.functions.channelId(ch.key).call() == ch.id
    assert_solvent(env, [ch])


def test_open_reverts(env):
    pc, now = env.pc, env.chain.now()
    payer, payee = env.payer.account, env.payee.account_address
    key = (payer.address, payee, ETH, 9)
    with pytest.raises(E("ChannelUnauthorized")):
        env.send(env.other.account, pc.functions.open(key, D, now + 100), D)
    with pytest.raises(E("ChannelInvalidParties")):
        env.send(payer, pc.functions.open((payer.address, payer.address, ETH, 9), D, now + 100), D)
    with pytest.raises(E("ChannelInvalidParties")):
        env.send(payer, pc.functions.open((payer.address, ETH, ETH, 9), D, now + 100), D)
    with pytest.raises(E("ChannelInvalidExpiry")):
        env.send(payer, pc.functions.open(key, D, now), D)
    with pytest.raises((E("ChannelInvalidExpiry"), errors.TransactionReverted)):  # expiry == block time
        env.send_at(now + 50, payer, pc.functions.open(key, D, now + 50), D)
    with pytest.raises(E("ChannelZeroAmount")):
        env.send(payer, pc.functions.open(key, 0, now + 100), 0)
    with pytest.raises(E("ChannelWrongValue")):
        env.send(payer, pc.functions.open(key, D, now + 100), D - 1)
    env.send(payer, pc.functions.open(key, D, now + 100), D)
    with pytest.raises(E("ChannelAlreadyExists")):
        env.send(payer, pc.functions.open(key, D, now + 100), D)


def test_erc20_open_credits_what_arrived(env):
    token = env.deploy("ChannelFeeToken", 100)  # 1% burnt per transfer
    token_fn = token.functions
    env.send(env.payer.account, token_fn.mint(env.payer.account_address, 10 * D))
    ch = env.open(asset=token.address, approve=True)  # client approves
    assert ch.deposit == D * 99 // 100
    assert token_fn.balanceOf(env.pc.address).call() == ch.deposit
    with pytest.raises(E("ChannelWrongValue")):
        env.send(
            env.payer.account,
            env.pc.functions.open(
                (env.payer.account_address, env.payee.account_address, token.address, 7),
                D,
                env.chain.now() + 100,
            ),
            1,
        )
    v = env.payer.sign_voucher(ch, D)  # more than arrived: pays exactly the deposit
    ch = env.payee.close(ch, v)
    assert ch.claimed == D * 99 // 100 and ch.status == ChannelStatus.CLOSED
    assert token_fn.balanceOf(env.payee.account_address).call() == ch.claimed * 99 // 100
    assert_solvent(env, [ch], token.address, token)


def test_deposit_above_uint104_rejected(env):
    token = env.deploy("ChannelTestToken")
    big = 2**104
    env.send(env.payer.account, token.functions.mint(env.payer.account_address, big))
    env.send(env.payer.account, token.functions.approve(env.pc.address, big))
    key = (env.payer.account_address, env.payee.account_address, token.address, 1)
    with pytest.raises(E("ChannelAmountTooLarge")):
        env.send(env.payer.account, env.pc.functions.open(key, big, env.chain.now() + 100))
    env.send(env.payer.account, env.pc.functions.open(key, big - 1, env.chain.now() + 100))
    with pytest.raises(E("ChannelAmountTooLarge")):
        env.send(env.payer.account, env.pc.functions.topUp(key, 1, 0))


# -- claims ----------------------------------------------------------------------------------------------


def test_cumulative_claims_keep_channel_open(env):
    ch = env.open()
    before = env.chain.w3.eth.get_balance(env.payee.account_address)
    ch = env.other.claim(env.payer.sign_voucher(ch, 100))  # a relayer may submit; the payee is paid
    ch = env.other.claim(env.payer.sign_voucher(ch, 250))
    assert ch.claimed == 250 and ch.status == ChannelStatus.OPEN
    assert env.chain.w3.eth.get_balance(env.payee.account_address) == before + 250
    with pytest.raises(E("ChannelNothingToClaim")):  # old voucher replayed
        v = env.payer.sign_voucher(ch, 250)
        env.send(env.payee.account, env.pc.functions.claim(ch.key, v.amount, v.signature))
    assert_solvent(env, [ch])


def test_over_deposit_voucher_pays_at_most_the_deposit(env):
    ch = env.open(deposit=1000)
    ch = env.payee.claim(env.payer.sign_voucher(ch, 10**30))
    assert ch.claimed == 1000
    v = env.payer.sign_voucher(ch, 10**31)
    with pytest.raises(E("ChannelNothingToClaim")):
        env.send(env.payee.account, env.pc.functions.claim(ch.key, v.amount, v.signature))
    ch = env.payer.top_up(ch, 500)  # a top-up makes the big voucher worth more again
    ch = env.payee.claim(v)
    assert ch.claimed == 1500 and ch.deposit == 1500
    assert_solvent(env, [ch])


def test_bad_signatures_rejected(env):
    ch = env.open()
    fn = env.pc.functions.claim
    forged = env.payee.sign_voucher(ch, 100)  # signed by the payee, not the payer
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, fn(ch.key, 100, forged.signature))
    good = env.payer.sign_voucher(ch, 100)
    with pytest.raises(E("ChannelInvalidSignature")):  # amount changed
        env.send(env.payee.account, fn(ch.key, 101, good.signature))
    with pytest.raises(E("ChannelInvalidSignature")):  # malformed
        env.send(env.payee.account, fn(ch.key, 100, good.signature[:64]))
    s = int.from_bytes(good.signature[32:64], "big")  # malleated high-s twin
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = good.signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - good.signature[64]])
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, fn(ch.key, 100, twin))
    close_sig = env.payer.close_signature(ch, 100).signature  # a close signature is not a voucher
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, fn(ch.key, 100, close_sig))


def test_voucher_replay_across_channels_contracts_and_chains(env):
    a = env.open(salt=1)
    b = env.open(salt=2)
    v = env.payer.sign_voucher(a, 100)
    with pytest.raises(E("ChannelInvalidSignature")):  # another channel, same parties
        env.send(env.payee.account, env.pc.functions.claim(b.key, 100, v.signature))
    # another deployment of the same contract, same key: the domain's verifyingContract differs
    twin = env.deploy("PaymentChannels")
    env.send(env.payer.account, twin.functions.open(a.key, D, a.expiry), D)
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, twin.functions.claim(a.key, 100, v.signature))
    # a voucher signed for another chain id does not verify here
    other_chain = VoucherSigner(env.payer.account, VoucherDomain(env.chain.chain_id + 1, env.pc.address))
    foreign = other_chain.sign(a.id, 100)
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, env.pc.functions.claim(a.key, 100, foreign.signature))
    env.payee.claim(v)  # the genuine one works


def test_expiry_boundaries(env):
    """claim/close while now <= expiry; reclaim once now > expiry: t-1, t, t+1 for each."""
    ch = env.open(ttl=1000)
    t, pc = ch.expiry, env.pc
    v = env.payer.sign_voucher(ch, 10)
    snap = env.chain.snapshot()
    fail = (E("ChannelExpired"), E("ChannelNotExpired"), errors.TransactionReverted)
    cases = [
        (env.payee.account, pc.functions.claim(ch.key, v.amount, v.signature), {-1: True, 0: True, 1: False}),
        (env.payee.account, pc.functions.close(ch.key, v.amount, v.signature), {-1: True, 0: True, 1: False}),
        (env.other.account, pc.functions.reclaim(ch.key), {-1: False, 0: False, 1: True}),
    ]
    for account, fn, outcomes in cases:
        for offset, ok in outcomes.items():
            env.chain.revert(snap)
            if ok:
                env.send_at(t + offset, account, fn)
                assert env.payer.onchain(ch.id) != (ChannelStatus.OPEN, D, 0, t)
            else:
                with pytest.raises(fail):
                    env.send_at(t + offset, account, fn)
                assert env.payer.onchain(ch.id) == (ChannelStatus.OPEN, D, 0, t)
    env.chain.revert(snap)


# -- close, reclaim, top up -------------------------------------------------------------------------------


def test_close_pays_and_refunds_then_channel_is_dead(env):
    ch = env.open()
    env.payee.claim(env.payer.sign_voucher(ch, 100))
    w3 = env.chain.w3
    payer_before = w3.eth.get_balance(env.payer.account_address)
    ch = env.payee.close(ch, env.payer.sign_voucher(ch, 400))
    assert ch.status == ChannelStatus.CLOSED and ch.claimed == 400
    assert w3.eth.get_balance(env.payer.account_address) == payer_before + D - 400
    v = env.payer.sign_voucher(ch, 500)
    with pytest.raises(E("ChannelNotOpen")):
        env.send(env.payee.account, env.pc.functions.claim(ch.key, v.amount, v.signature))
    with pytest.raises(E("ChannelNotOpen")):
        env.send(env.payer.account, env.pc.functions.reclaim(ch.key))
    with pytest.raises(E("ChannelAlreadyExists")):  # a used id never reopens: old vouchers stay dead
        env.send(env.payer.account, env.pc.functions.open(ch.key, D, ch.expiry), D)
    assert_solvent(env, [ch])


def test_close_only_by_payee_and_without_voucher(env):
    ch = env.open()
    with pytest.raises(E("ChannelUnauthorized")):
        env.send(env.payer.account, env.pc.functions.close(ch.key, 0, b""))
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, env.pc.functions.close(ch.key, 5, b"\x00" * 65))
    ch = env.payee.close(ch)
    assert ch.claimed == 0 and ch.status == ChannelStatus.CLOSED
    assert_solvent(env, [ch])


def test_reclaim_after_expiry_returns_the_rest(env):
    ch = env.open(ttl=100)
    ch = env.payee.claim(env.payer.sign_voucher(ch, 123))
    env.chain.advance_time(101)
    ch = env.other.reclaim(ch)
    assert ch.status == ChannelStatus.RECLAIMED and ch.claimed == 123
    assert_solvent(env, [ch])


def test_top_up_and_extend(env):
    ch = env.open(ttl=100)
    key = ch.key
    with pytest.raises(E("ChannelUnauthorized")):
        env.send(env.payee.account, env.pc.functions.topUp(key, 1, 0), 1)
    with pytest.raises(E("ChannelInvalidExpiry")):
        env.send(env.payer.account, env.pc.functions.topUp(key, 0, ch.expiry - 1))
    with pytest.raises(E("ChannelNothingToChange")):
        env.send(env.payer.account, env.pc.functions.topUp(key, 0, 0))
    with pytest.raises(E("ChannelWrongValue")):
        env.send(env.payer.account, env.pc.functions.topUp(key, 5, 0), 4)
    ch = env.payer.top_up(ch, 7)
    assert ch.deposit == D + 7
    env.chain.advance_time(200)  # expired, not reclaimed: extending revives it for the payee
    ch = env.payer.top_up(ch, new_expiry=env.chain.now() + 500)
    env.payee.claim(env.payer.sign_voucher(ch, D + 7))
    assert_solvent(env, [ch])


def test_cooperative_close_variants(env, tmp_path):
    store = VoucherStore(tmp_path / "payee.db", env.payee.domain, durable=False, clock=env.chain.now)
    a, b, c = env.open(salt=1), env.open(salt=2), env.open(salt=3)
    for ch in (a, b, c):
        store.register(ch.terms())
    # payee calls with the payer's signature
    a = env.payee.cooperative_close(a, 300, payer_signature=env.payer.close_signature(a, 300))
    # payer calls with the payee's signature: the payer gets its money back before expiry
    b = env.payer.cooperative_close(b, 50, payee_signature=env.payee.close_signature(b, 50, store=store))
    # a relayer submits both
    c = env.other.cooperative_close(
        c,
        10**30,
        payer_signature=env.payer.close_signature(c, 10**30),
        payee_signature=env.payee.close_signature(c, 10**30, store=store),
    )
    assert (a.claimed, b.claimed, c.claimed) == (300, 50, D)
    assert all(x.status == ChannelStatus.CLOSED for x in (a, b, c))
    d = env.open(salt=4)
    store.register(d.terms())
    deadline = env.chain.now() + 600
    voucher = env.payer.sign_voucher(d, 10)  # a voucher is not a close authorisation
    payee_consent = env.payee.close_signature(d, 10, store=store).signature  # one party's is not enough
    for payer_sig, payee_sig in ((voucher.signature, b""), (payee_consent, b"")):
        with pytest.raises(E("ChannelInvalidSignature")):
            env.send(
                env.other.account,
                env.pc.functions.cooperativeClose(d.key, 10, deadline, payer_sig, payee_sig),
            )
    assert_solvent(env, [a, b, c, d])


def test_cooperative_close_consent_needs_the_payees_store_and_a_live_deadline(env, tmp_path):
    ch = env.open()
    with pytest.raises(errors.InvalidInput, match="VoucherStore"):  # before any signature exists
        env.payee.close_signature(ch, 10)
    store = VoucherStore(tmp_path / "payee.db", env.payee.domain, durable=False, clock=env.chain.now)
    store.register(ch.terms())
    store.accept(env.payer.sign_voucher(ch, 100))
    with pytest.raises(errors.InvalidInput, match="below the latest voucher"):
        env.payee.close_signature(ch, 99, store=store)
    consent = env.payee.close_signature(ch, 100, ttl=60, store=store)
    env.chain.travel_to(consent.deadline + 1)
    with pytest.raises(errors.InvalidState, match="expired"):  # the client's pre-flight
        env.payer.cooperative_close(ch, 100, payee_signature=consent)
    fn = env.pc.functions.cooperativeClose(ch.key, 100, consent.deadline, b"", consent.signature)
    with pytest.raises(E("ChannelCloseExpired")):  # and the contract's
        env.send(env.payer.account, fn)


# -- batch ----------------------------------------------------------------------------------------------------


def test_claim_many_skips_and_reports(env):
    chans = [env.open(salt=i) for i in range(4)]
    stale = chans[3]
    env.payee.claim(env.payer.sign_voucher(stale, 50))
    vouchers = [env.payer.sign_voucher(ch, 100 + i) for i, ch in enumerate(chans)]
    vouchers[1] = env.payee.sign_voucher(chans[1], 100)  # forged
    vouchers[3] = env.payer.sign_voucher(stale, 40)  # below what was claimed
    before = env.chain.w3.eth.get_balance(env.payee.account_address)
    result = env.other.claim_many(vouchers, preflight=False)
    assert result.succeeded == 2 and result.total_paid == 100 + 102
    assert set(result.skipped) == {chans[1].id, chans[3].id}
    assert type(result.skipped[chans[1].id]).__name__ == "ChannelInvalidSignature"
    assert type(result.skipped[chans[3].id]).__name__ == "ChannelNothingToClaim"
    assert env.chain.w3.eth.get_balance(env.payee.account_address) == before + 202
    # with preflight the client drops the bad ones before sending
    more = [env.payer.sign_voucher(ch, 500) for ch in chans]
    more[1] = env.payee.sign_voucher(chans[1], 500)
    result = env.payee.claim_many(more)
    assert result.succeeded == 3 and not result.skipped
    assert_solvent(env, chans)


def test_claim_many_mixed_payees_and_assets(env):
    token = env.deploy("ChannelTestToken")
    env.send(env.payer.account, token.functions.mint(env.payer.account_address, 10 * D))
    other_payee = env.other.account_address
    chans = [
        env.open(salt=1),
        env.payer.open(other_payee, D, ttl=3600, salt=2),
        env.open(salt=3, asset=token.address, approve=True),
        env.open(salt=4),
    ]
    vouchers = [env.payer.sign_voucher(ch, 1000) for ch in chans]
    result = env.payee.claim_many(vouchers)
    assert result.succeeded == 4
    assert token.functions.balanceOf(env.payee.account_address).call() == 1000
    assert_solvent(env, [chans[0], chans[1], chans[3]])
    assert_solvent(env, chans[2:3], token.address, token)


# -- hostile receivers, ERC-1271, blocked tokens ------------------------------------------------------------------


def _wallet(env: Env, owner: Any, mode: int = 0) -> Any:
    wallet = env.deploy("ChannelAgentWallet", owner.address)
    env.send(owner, wallet.functions.setMode(mode))
    return wallet


@pytest.mark.parametrize("mode", [1, 2], ids=["reverting", "gas-burning"])
def test_hostile_payee_is_credited_and_cannot_block_the_payer(env, mode):
    owner = env.chain.accounts[4]
    wallet = _wallet(env, owner, mode)
    ch = env.payer.open(wallet.address, D, ttl=3600)
    v = env.payer.sign_voucher(ch, 700)
    env.send(env.other.account, env.pc.functions.claim(ch.key, v.amount, v.signature), gas=1_000_000)
    assert env.pc.functions.creditOf(wallet.address, ETH).call() == 700
    env.chain.advance_time(3601)
    env.payer.reclaim(ch)  # the payer's exit works regardless
    assert_solvent(env, [ch])
    # the wallet pulls its credit to a plain address
    sink = Account.create().address
    env.send(
        owner, wallet.functions.execute(env.pc.address, 0, env.pc.encode_abi("withdrawTo", args=[ETH, sink]))
    )
    assert env.chain.w3.eth.get_balance(sink) == 700
    assert env.pc.functions.creditTotal(ETH).call() == 0
    with pytest.raises(E("CreditsNothingToWithdraw")):
        env.send(env.payee.account, env.pc.functions.withdraw(ETH))


def test_hostile_payer_cannot_block_close_and_reentry_fails(env):
    owner = env.chain.accounts[4]
    wallet = _wallet(env, owner, 3)  # re-enters on receiving its refund
    key = (wallet.address, env.payee.account_address, ETH, 1)
    expiry = env.chain.now() + 3600
    env.send(
        owner,
        wallet.functions.execute(env.pc.address, D, env.pc.encode_abi("open", args=[key, D, expiry])),
        value=D,
    )
    ch = env.payee.channel(env.pc.functions.channelId(key).call())
    # ERC-1271: the wallet's owner key signs the voucher
    v = VoucherSigner(owner, env.payee.domain).sign(ch.id, 300)
    assert env.payee.verify_voucher(v, ch)
    env.send(owner, wallet.functions.setReentry(env.pc.address, env.pc.encode_abi("reclaim", args=[key])))
    ch = env.payee.close(ch, v)
    assert ch.claimed == 300 and ch.status == ChannelStatus.CLOSED
    assert wallet.functions.reentryAttempts().call() == 2 and not wallet.functions.reentered().call()
    assert env.chain.w3.eth.get_balance(wallet.address) == D - 300
    assert_solvent(env, [ch])


def test_erc1271_payer_wrong_owner_rejected(env):
    owner = env.chain.accounts[4]
    wallet = _wallet(env, owner)
    key = (wallet.address, env.payee.account_address, ETH, 1)
    env.send(
        owner,
        wallet.functions.execute(
            env.pc.address, D, env.pc.encode_abi("open", args=[key, D, env.chain.now() + 3600])
        ),
        value=D,
    )
    ch = env.payee.channel(env.pc.functions.channelId(key).call())
    forged = VoucherSigner(env.chain.accounts[5], env.payee.domain).sign(ch.id, 300)
    with pytest.raises(errors.SignatureError):
        env.payee.claim(forged)
    with pytest.raises(E("ChannelInvalidSignature")):
        env.send(env.payee.account, env.pc.functions.claim(key, 300, forged.signature))


def test_blocked_token_payout_becomes_credit(env):
    token = env.deploy("ChannelBlockingToken")
    env.send(env.payer.account, token.functions.mint(env.payer.account_address, 10 * D))
    ch = env.open(asset=token.address, approve=True)
    env.send(env.payer.account, token.functions.setBlocked(env.payer.account_address, True))
    ch = env.payee.close(ch, env.payer.sign_voucher(ch, 10))  # the payer's refund cannot be pushed
    assert token.functions.balanceOf(env.payee.account_address).call() == 10
    assert env.pc.functions.creditOf(env.payer.account_address, token.address).call() == D - 10
    assert_solvent(env, [ch], token.address, token)
    with pytest.raises(E("CreditsTransferFailed")):
        env.send(env.payer.account, env.pc.functions.withdraw(token.address))
    env.payer.withdraw(token.address, to=env.other.account_address)
    assert token.functions.balanceOf(env.other.account_address).call() == D - 10
    assert_solvent(env, [ch], token.address, token)


def test_insufficient_gas_for_payout_reverts_instead_of_crediting(env):
    ch = env.open()
    v = env.payer.sign_voucher(ch, 10)
    fn = env.pc.functions.claim(ch.key, v.amount, v.signature)
    with pytest.raises(errors.AgentMarketError):
        env.send(env.payee.account, fn, gas=60_000)
    assert env.payee.onchain(ch.id)[2] == 0 and env.payee.credit() == 0


# -- client pre-flight -----------------------------------------------------------------------------------------------


def test_client_preflight_raises_before_sending(env):
    w3 = env.chain.w3
    nonce = w3.eth.get_transaction_count(env.payer.account_address)
    with pytest.raises(errors.InvalidInput):
        env.payer.open(env.payer.account_address, D, ttl=10)
    with pytest.raises(errors.InvalidInput):
        env.payer.open(env.payee.account_address, 0, ttl=10)
    with pytest.raises(errors.InvalidInput):
        env.payer.open(env.payee.account_address, D, expiry=env.chain.now() - 1)
    with pytest.raises(errors.InsufficientFunds):
        env.payer.open(env.payee.account_address, 10**30, ttl=10)
    token = env.deploy("ChannelTestToken")
    env.send(env.chain.accounts[0], token.functions.mint(env.payer.account_address, D))
    nonce = w3.eth.get_transaction_count(env.payer.account_address)
    with pytest.raises(errors.InsufficientAllowance):
        env.payer.open(env.payee.account_address, D, ttl=10, asset=token.address)  # approve defaults to False
    ch = env.open(salt=5)
    nonce = w3.eth.get_transaction_count(env.payer.account_address)
    with pytest.raises(errors.InvalidState):
        env.open(salt=5)
    with pytest.raises(errors.NotAuthorized):
        env.payer.close(ch)
    with pytest.raises(errors.NotAuthorized):
        env.payee.top_up(ch, 1)
    with pytest.raises(errors.InvalidState):
        env.payer.reclaim(ch)
    with pytest.raises(errors.SignatureError):
        env.payee.claim(env.payee.sign_voucher(ch, 5))
    with pytest.raises(errors.InvalidInput):
        env.payer.top_up(ch, 0)
    assert w3.eth.get_transaction_count(env.payer.account_address) == nonce
    env.chain.advance_time(4000)
    with pytest.raises(errors.InvalidState):
        env.payee.claim(env.payer.sign_voucher(ch, 5))
    with pytest.raises(errors.InvalidState):
        env.payee.close(ch)


def test_rebuilt_channel_equals_onchain_view(env):
    ch = env.open()
    for step in range(3):
        ch = env.payee.claim(env.payer.sign_voucher(ch, 100 * (step + 1)))
        ch = env.payer.top_up(ch, 10, new_expiry=ch.expiry + 10)
        assert (ch.status, ch.deposit, ch.claimed, ch.expiry) == env.payer.onchain(ch.id)
    ch = env.payee.close(ch)
    assert (ch.status, ch.deposit, ch.claimed, ch.expiry) == env.payer.onchain(ch.id)

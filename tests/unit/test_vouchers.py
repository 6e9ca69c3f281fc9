"""Voucher digests equal the contract's and eth-account's; the SQLite store verifies, is monotonic,
durable across a SIGKILL, and the restarted payee claims the last voucher it acknowledged."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmarket import errors
from agentmarket.clients.channels import ChannelClient
from agentmarket.meter import PayeeMeter, PayerMeter
from agentmarket.vouchers import (
    ChannelTerms,
    Voucher,
    VoucherDomain,
    VoucherSigner,
    VoucherStore,
    recover,
    typed_data,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = Account.from_key(b"\x11" * 32)
OTHER = Account.from_key(b"\x22" * 32)
DOMAIN = VoucherDomain(1, "0x" + "ab" * 20)
CID = b"\x01" * 32


def terms(deposit=10**6, expiry=2**39, payer=KEY.address, cid=CID):
    return ChannelTerms(cid, payer, OTHER.address, "0x" + "00" * 20, deposit, expiry)


@settings(max_examples=40)
@given(
    cid=st.binary(min_size=32, max_size=32),
    amount=st.integers(0, 2**256 - 1),
    chain_id=st.integers(1, 2**64),
    contract=st.binary(min_size=20, max_size=20),
)
def test_digest_matches_eth_account(cid, amount, chain_id, contract):
    domain = VoucherDomain(chain_id, "0x" + contract.hex())
    message = encode_typed_data(full_message=typed_data(chain_id, domain.contract, cid, amount))
    expected = bytes(KEY.sign_message(message).message_hash)
    assert domain.voucher_digest(cid, amount) == expected
    voucher = VoucherSigner(KEY, domain).sign(cid, amount)
    assert recover(expected, voucher.signature) == KEY.address
    assert Account._recover_hash(expected, signature=voucher.signature) == KEY.address


@pytest.fixture(scope="module")
def deployed(_embedded):
    chain, suite = _embedded
    return chain, suite["PaymentChannels"]


@settings(max_examples=25)
@given(cid=st.binary(min_size=32, max_size=32), amount=st.integers(0, 2**256 - 1))
def test_digest_matches_contract(deployed, cid, amount):
    chain, pc = deployed
    domain = VoucherDomain(chain.chain_id, pc.address)
    assert domain.voucher_digest(cid, amount) == bytes(pc.functions.voucherDigest(cid, amount).call())
    deadline = amount >> 1
    assert domain.close_digest(cid, amount, deadline) == bytes(
        pc.functions.closeDigest(cid, amount, deadline).call()
    )
    assert domain.separator == bytes(pc.functions.domainSeparator().call())


def test_signer_repr_hides_key():
    signer = VoucherSigner(KEY, DOMAIN)
    assert KEY.key.hex() not in repr(signer) and KEY.address in repr(signer)


def test_voucher_json_roundtrip_and_malformed():
    v = VoucherSigner(KEY, DOMAIN).sign(CID, 5)
    assert Voucher.from_json(json.loads(json.dumps(v.to_json()))) == v
    with pytest.raises(errors.InvalidInput):
        Voucher.from_json({"channelId": "0x12"})
    with pytest.raises(errors.InvalidInput):
        Voucher(CID, -1, b"")


# -- store ------------------------------------------------------------------------------------------------


def test_store_accepts_monotonic_within_deposit(tmp_path):
    store = VoucherStore(tmp_path / "v.db", DOMAIN, durable=False)
    store.register(terms(deposit=100))
    signer = VoucherSigner(KEY, DOMAIN)
    assert store.accept(signer.sign(CID, 10)).voucher.amount == 10
    with pytest.raises(errors.InvalidInput):  # not above the latest
        store.accept(signer.sign(CID, 10))
    with pytest.raises(errors.InvalidInput):  # below the price of the call
        store.accept(signer.sign(CID, 12), min_increment=5)
    with pytest.raises(errors.InvalidInput):  # above the deposit
        store.accept(signer.sign(CID, 101))
    with pytest.raises(errors.SignatureError):  # wrong signer
        store.accept(VoucherSigner(OTHER, DOMAIN).sign(CID, 20))
    with pytest.raises(errors.SignatureError):  # right signer, another contract's domain
        store.accept(VoucherSigner(KEY, VoucherDomain(1, "0x" + "cd" * 20)).sign(CID, 20))
    with pytest.raises(errors.InvalidState):  # unknown channel
        store.accept(signer.sign(b"\x02" * 32, 20))
    with pytest.raises(errors.InvalidState):  # expired
        store.accept(signer.sign(CID, 20), now=2**39 + 1)
    assert store.accept(signer.sign(CID, 100)).unclaimed == 100
    store.mark_claimed(CID, 60)
    store.mark_claimed(CID, 40)  # never backwards
    latest = store.latest(CID)
    assert latest is not None and latest.claimed == 60 and latest.unclaimed == 40
    assert [s.voucher.amount for s in store.unclaimed()] == [100]
    mode = sqlite3.connect(tmp_path / "v.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_store_concurrent_accepts_never_regress(tmp_path):
    path = tmp_path / "v.db"
    VoucherStore(path, DOMAIN).register(terms(deposit=10**9))
    signer = VoucherSigner(KEY, DOMAIN)
    vouchers = [signer.sign(CID, a) for a in range(1, 201)]
    errors_seen: list[Exception] = []

    def worker(chunk):
        store = VoucherStore(path, DOMAIN, durable=False)
        for v in chunk:
            try:
                store.accept(v)
            except errors.InvalidInput as exc:  # raced by a larger one: fine
                errors_seen.append(exc)

    threads = [threading.Thread(target=worker, args=(vouchers[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latest = VoucherStore(path, DOMAIN).latest(CID)
    assert latest is not None and latest.voucher.amount == 200


def test_meter_in_process(tmp_path):
    store = VoucherStore(tmp_path / "m.db", DOMAIN, durable=False)
    store.register(terms(deposit=1000))
    payer = PayerMeter(VoucherSigner(KEY, DOMAIN), CID, 1000, price_per_unit=3)
    payee = PayeeMeter(store, price_per_unit=3)
    for _ in range(10):
        payee.receive(payer.pay_units(2), units=2)
    assert store.latest(CID).voucher.amount == 60 and payer.spent == 60
    with pytest.raises(errors.InvalidInput):  # pays for 1 unit, claims 2
        payee.receive(payer.pay_units(1), units=2)
    with pytest.raises(errors.InsufficientFunds):
        payer.pay(10_000)


# -- a payee process killed mid-stream ---------------------------------------------------------------------


def test_sigkilled_payee_restarts_and_claims_last_acknowledged(chain, suite, tmp_path):
    payer = ChannelClient.from_suite(suite, chain.accounts[1])
    payee = payer.as_(chain.accounts[2])
    price = 10**9
    ch = payer.open(payee.account_address, 10**18, ttl=3600)
    db = tmp_path / "payee.db"
    store = VoucherStore(db, payee.domain, clock=chain.now)
    store.register(ch.terms())
    store.close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentmarket.meter",
            "payee",
            "--db",
            str(db),
            "--chain-id",
            str(chain.chain_id),
            "--contract",
            payee.contract.address,
            "--price",
            str(price),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=env,
    )
    meter = PayerMeter(payer.signer, ch.id, ch.deposit, price_per_unit=price)
    acked = 0
    assert proc.stdin is not None and proc.stdout is not None
    for _i in range(60):
        proc.stdin.write(json.dumps({"voucher": meter.pay_units(1).to_json(), "units": 1}) + "\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        assert "ack" in reply, reply
        acked = int(reply["ack"])
    # keep streaming without waiting for acks, then kill it mid-stream
    for _ in range(200):
        proc.stdin.write(json.dumps({"voucher": meter.pay_units(1).to_json(), "units": 1}) + "\n")
    proc.stdin.flush()
    acks_after = []
    for _ in range(20):
        acks_after.append(int(json.loads(proc.stdout.readline())["ack"]))
    acked = acks_after[-1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the restarted payee: a fresh store on the same file
    restarted = VoucherStore(db, payee.domain, clock=chain.now)
    latest = restarted.latest(ch.id)
    assert latest is not None
    assert latest.voucher.amount >= acked  # everything acknowledged survived (maybe a few more)
    assert latest.voucher.amount <= meter.spent
    after = payee.claim(latest.voucher)
    restarted.mark_claimed(ch.id, after.claimed)
    assert after.claimed == latest.voucher.amount >= acked
    assert restarted.unclaimed() == []

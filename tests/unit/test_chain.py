"""Chain backends: embedded, anvil and JSON-RPC, with one time/snapshot API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from agentmarket.chain import Chain, load_keystore, save_keystore
from agentmarket.errors import ChainUnavailable, ConfigError

KNOWN_KEY = "0x" + "ab" * 32


def test_time_and_snapshots(any_chain: Chain):
    start = any_chain.now()
    assert any_chain.advance_time(3600) == start + 3600
    assert any_chain.now() == start + 3600
    snap = any_chain.snapshot()
    any_chain.advance_time(100)
    block = any_chain.w3.eth.block_number
    any_chain.revert(snap)
    assert any_chain.now() == start + 3600
    assert any_chain.w3.eth.block_number < block
    any_chain.set_next_timestamp(start + 7200)
    any_chain.mine()
    assert any_chain.now() == start + 7200


def test_accounts_are_funded_and_sign_locally(any_chain: Chain):
    a, b = any_chain.accounts[0], any_chain.accounts[1]
    before = any_chain.w3.eth.get_balance(b.address)
    receipt = any_chain.transactor.send_value(a, b.address, 12345)
    assert receipt["status"] == 1
    assert any_chain.w3.eth.get_balance(b.address) == before + 12345


def test_new_account_is_funded(any_chain: Chain):
    fresh = any_chain.new_account(fund=10**18)
    assert any_chain.w3.eth.get_balance(fresh.address) == 10**18


def test_nonces_resync_after_revert(chain: Chain):
    a = chain.accounts[0]
    snap = chain.snapshot()
    chain.transactor.send_value(a, chain.accounts[1].address, 1)
    chain.revert(snap)
    chain.transactor.send_value(a, chain.accounts[1].address, 1)  # would fail with a stale local nonce


def test_repr_has_no_key():
    chain = Chain.embedded(accounts=2)
    text = repr(chain) + str(chain.accounts) + repr(chain.transactor.__dict__)
    for account in chain.accounts:
        assert account.key.hex() not in text


def test_unreachable_rpc_is_typed():
    with pytest.raises(ChainUnavailable, match="cannot reach"):
        Chain.connect("http://127.0.0.1:9")


def test_bad_scheme():
    with pytest.raises(ConfigError, match="scheme"):
        Chain.connect("ftp://example")


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8546", "wss://node.example/rpc"])
def test_websocket_url_is_a_config_error(url):
    # web3 8 has no synchronous WebSocket provider: a typed error naming the fix, before any connection
    with pytest.raises(ConfigError, match="http:// or https://"):
        Chain.connect(url)


def test_connect_with_env_key_for_unfunded_account(anvil: Chain, monkeypatch):
    monkeypatch.setenv("AGENTMARKET_PRIVATE_KEYS", KNOWN_KEY)
    with pytest.raises(ConfigError) as info:
        Chain.connect(anvil.url)
    assert "no funds" in str(info.value)
    assert KNOWN_KEY[2:] not in str(info.value)


def test_connect_with_funded_key(anvil: Chain, monkeypatch):
    monkeypatch.setenv("AGENTMARKET_PRIVATE_KEYS", anvil.accounts[3].key.hex())
    remote = Chain.connect(anvil.url)
    assert remote.kind == "rpc" and remote.accounts[0].address == anvil.accounts[3].address
    assert remote.chain_id == anvil.chain_id


def test_malformed_key_is_not_echoed(anvil: Chain):
    with pytest.raises(ConfigError) as info:
        Chain.connect(anvil.url, keys=["0x1234zz"])
    assert "1234zz" not in str(info.value)


def test_keystore_roundtrip(tmp_path, anvil: Chain):
    path = save_keystore(anvil.accounts[2], tmp_path / "agent.json", "pw")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert anvil.accounts[2].key.hex() not in path.read_text()
    assert load_keystore(path, "pw").address == anvil.accounts[2].address
    with pytest.raises(ConfigError, match="wrong password"):
        load_keystore(path, "nope")
    remote = Chain.connect(anvil.url, keystore=path, password="pw")
    assert remote.accounts[0].address == anvil.accounts[2].address


def test_anvil_stops_when_owner_is_killed(tmp_path):
    """No orphans: anvil dies with the Python process that started it, even on SIGKILL."""
    code = "from agentmarket.chain import Chain; import sys, time; c = Chain.anvil(); print(c._process.pid, flush=True); time.sleep(60)"
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(owner.stdout.readline())
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap if it became our zombie (it is not our child, so normally init reaps it)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    pytest.fail(f"anvil pid {pid} outlived its owner")


def test_close_stops_anvil():
    chain = Chain.anvil()
    process = chain._process
    chain.close()
    assert process is not None and process.poll() is not None

"""Anvil nodes a test owns: anvil nodes this test owns, which it can kill and restart on the same port."""

from __future__ import annotations

import subprocess
import time

from eth_account import Account
from web3 import Web3

from agentmarket.chain import ANVIL_MNEMONIC, Chain, anvil_binary, free_port
from agentmarket.rpc import RetryPolicy
from agentmarket.tx import Transactor

FAST_RETRY = RetryPolicy(attempts=3, initial=0.02, max_delay=0.1)


class Node:
    """One anvil process on a fixed port; ``kill`` (SIGKILL, no goodbye) and ``start`` again."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        cmd = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--accounts",
            "3",
            *self.args,
            *extra,
        ]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        w3 = Web3(Web3.HTTPProvider(self.url))
        deadline = time.monotonic() + 20
        while True:
            try:
                if w3.is_connected():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("anvil did not start")
            time.sleep(0.05)

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        w3 = Web3(Web3.HTTPProvider(self.url))
        return w3.provider.make_request(method, params or [])["result"]  # type: ignore[arg-type]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def chain(self) -> Chain:
        Account.enable_unaudited_hdwallet_features()
        keys = [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(3)]
        chain = Chain(
            Web3(Web3.HTTPProvider(self.url, exception_retry_configuration=None)), "anvil", keys, url=self.url
        )
        chain._transactor = Transactor(chain, policy=FAST_RETRY)
        return chain

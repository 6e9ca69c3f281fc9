"""A fast driver for anvil used by the property machines and security tests.

web3.py's HTTP transport costs ~6 ms per request on loopback (Nagle + delayed ACK on a keep-alive
POST); a raw JSON-RPC connection with TCP_NODELAY answers in ~1 ms. Property machines send thousands
of transactions and read hundreds of views per example, so they talk to anvil through this module:
local signing with a local nonce per account, every transaction mined at an exact timestamp chosen by
the caller, gas cost per sender recorded (so ETH balances can be predicted exactly), batched eth_calls
for the invariant reads, and simulations on the pending block that decode reverts into the same typed
:mod:`agentmarket.errors` classes the clients raise.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from helpers import load_artifact
from hexbytes import HexBytes

from agentmarket.chain import Chain
from agentmarket.errors import ContractRevert, decode_revert

GAS = 3_000_000
ETH = "0x0000000000000000000000000000000000000000"


class RPCError(Exception):
    def __init__(self, error: dict[str, Any]):
        self.error = error
        super().__init__(error.get("message", str(error)))

    @property
    def revert_data(self) -> bytes | None:
        data = self.error.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return bytes.fromhex(data[2:])
        if isinstance(data, dict) and isinstance(data.get("data"), str):
            return bytes.fromhex(data["data"][2:])
        if "execution reverted" in str(self.error.get("message", "")):
            return b""
        return None


class RawRPC:
    """JSON-RPC over one keep-alive HTTP connection with TCP_NODELAY."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 8545
        self._conn: http.client.HTTPConnection | None = None
        self._id = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload)
        for attempt in range(2):
            try:
                conn = self._connection()
                conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                return json.loads(conn.getresponse().read())
            except (ConnectionError, http.client.HTTPException, OSError):
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self._id += 1
        reply = self._post({"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)})
        if "error" in reply:
            raise RPCError(reply["error"])
        return reply["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in order; an item that failed is returned as an :class:`RPCError` instance."""
        if not calls:
            return []
        base = self._id
        self._id += len(calls)
        payload = [
            {"jsonrpc": "2.0", "id": base + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        replies = {r["id"]: r for r in self._post(payload)}
        return [
            RPCError(replies[base + i]["error"])
            if "error" in replies[base + i]
            else replies[base + i]["result"]
            for i in range(len(calls))
        ]


class Receipt(dict):  # type: ignore[type-arg]
    """A transaction receipt with ints and HexBytes where web3.py would put them."""

    @property
    def ok(self) -> bool:
        return int(self["status"]) == 1


def _receipt(raw: dict[str, Any]) -> Receipt:
    logs = []
    for log in raw["logs"]:
        logs.append(
            {
                "address": to_checksum_address(log["address"]),
                "topics": [HexBytes(t) for t in log["topics"]],
                "data": HexBytes(log["data"]),
                "blockNumber": int(log["blockNumber"], 16),
                "blockHash": HexBytes(log["blockHash"]),
                "transactionHash": HexBytes(log["transactionHash"]),
                "transactionIndex": int(log["transactionIndex"], 16),
                "logIndex": int(log["logIndex"], 16),
                "removed": False,
            }
        )
    return Receipt(
        status=int(raw["status"], 16),
        gasUsed=int(raw["gasUsed"], 16),
        effectiveGasPrice=int(raw["effectiveGasPrice"], 16),
        blockNumber=int(raw["blockNumber"], 16),
        transactionHash=HexBytes(raw["transactionHash"]),
        logs=logs,
        contractAddress=to_checksum_address(raw["contractAddress"]) if raw.get("contractAddress") else None,
    )


class FastChain:
    """Drives an anvil :class:`~agentmarket.chain.Chain`: exact timestamps, local nonces, gas bookkeeping."""

    def __init__(self, chain: Chain):
        assert chain.kind == "anvil" and chain.url, "FastChain drives anvil only"
        self.chain = chain
        self.w3 = chain.w3
        self.rpc = RawRPC(chain.url)
        self.chain_id = chain.chain_id
        self.nonces: dict[str, int] = {}
        self.gas_spent: dict[str, int] = defaultdict(int)  # wei spent on gas per sender since reset()
        self.now = self.latest_timestamp()
        self.txs = 0
        self.failed_txs = 0  # mined and reverted (the machines' predicted failures)

    # -- state ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget nonces and gas bookkeeping, re-read the clock (after a revert)."""
        self.nonces.clear()
        self.gas_spent.clear()
        self.now = self.latest_timestamp()
        self.chain.transactor.reset_nonces()

    def snapshot(self) -> str:
        return str(self.rpc.call("evm_snapshot"))

    def revert(self, snap: str) -> None:
        assert self.rpc.call("evm_revert", [snap]), f"anvil refused to revert to {snap}"
        self.reset()

    def latest_timestamp(self) -> int:
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    # -- time --------------------------------------------------------------------------------------

    def tick(self) -> int:
        """The next transaction is mined one second after the previous block; returns that time."""
        self.now += 1
        self.rpc.call("evm_setNextBlockTimestamp", [self.now])
        return self.now

    def jump(self, seconds: int) -> int:
        """Mine an empty block ``seconds`` after the latest one (the clock moves forward)."""
        assert seconds >= 1
        self.now += int(seconds)
        self.rpc.call("evm_mine", [self.now])
        return self.now

    # -- transactions ---------------------------------------------------------------------------------

    def _nonce(self, address: str) -> int:
        if address not in self.nonces:
            self.nonces[address] = int(self.rpc.call("eth_getTransactionCount", [address, "latest"]), 16)
        return self.nonces[address]

    def send(
        self,
        account: LocalAccount,
        to: str | None,
        data: bytes | str = b"",
        value: int = 0,
        gas: int = GAS,
        tick: bool = True,
    ) -> Receipt:
        """Sign and send at ``now + 1`` (with ``tick``); the receipt, whatever its status."""
        if tick:
            self.tick()
        address = account.address
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self._nonce(address),
            "value": int(value),
            "gas": int(gas),
            "maxFeePerGas": 100 * 10**9,
            "maxPriorityFeePerGas": 0,
            "data": HexBytes(data),
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = account.sign_transaction(tx)
        tx_hash = self.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        self.nonces[address] += 1
        raw = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        waited = 0.0
        while raw is None:  # anvil automines, but may answer the send before the block is sealed
            assert waited < 30, f"{tx_hash} not mined (anvil must automine)"
            time.sleep(0.001)
            waited += 0.001
            raw = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        receipt = _receipt(raw)
        self.gas_spent[address] += receipt["gasUsed"] * receipt["effectiveGasPrice"]
        self.txs += 1
        self.failed_txs += 0 if receipt.ok else 1
        return receipt

    def simulate(self, sender: str, to: str, data: bytes | str, value: int = 0) -> ContractRevert | None:
        """Run the call on the pending block (the timestamp set by :meth:`tick`); its typed revert or None."""
        call = {
            "from": sender,
            "to": to,
            "data": "0x" + bytes(HexBytes(data)).hex(),
            "value": hex(value),
            "gas": hex(GAS),
        }
        try:
            self.rpc.call("eth_call", [call, "pending"])
        except RPCError as exc:
            data_ = exc.revert_data
            if data_ is None:
                raise
            return decode_revert(data_)
        return None

    def deploy(self, account: LocalAccount, name: str, *args: Any) -> Any:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.send(account, None, factory.constructor(*args).data_in_transaction, gas=8_000_000)
        assert receipt.ok, f"deploying {name} failed"
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    # -- reads -------------------------------------------------------------------------------------------

    def calls(self, items: Iterable[tuple[str, bytes | str]]) -> list[bytes]:
        """Batched eth_calls on the latest block: (to, calldata) -> raw return bytes."""
        items = list(items)
        results = self.rpc.batch(
            [("eth_call", [{"to": to, "data": "0x" + bytes(HexBytes(d)).hex()}, "latest"]) for to, d in items]
        )
        out = []
        for r in results:
            if isinstance(r, RPCError):
                raise r
            out.append(bytes.fromhex(r[2:]))
        return out

    def eth_balances(self, addresses: Sequence[str]) -> list[int]:
        return [int(r, 16) for r in self.rpc.batch([("eth_getBalance", [a, "latest"]) for a in addresses])]


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def encode_call(signature: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    from eth_abi import encode

    return selector(signature) + encode(list(types), list(args))


def as_uint(raw: bytes, index: int = 0) -> int:
    return int.from_bytes(raw[32 * index : 32 * index + 32], "big")


def decode(types: Sequence[str], raw: bytes) -> tuple[Any, ...]:
    return tuple(abi_decode(list(types), raw))

"""Connect to a chain: an in-process eth-tester (default), a local anvil, or any JSON-RPC endpoint.

:class:`Chain` gives a connected ``Web3`` plus funded accounts (with keys, so transactions are signed
locally the same way on every backend) and one time/snapshot API over eth-tester and anvil.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import platform as py_platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from .errors import ChainUnavailable, ConfigError, InvalidInput

EMBEDDED_CHAIN_ID = 131277322940537
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
KEYS_ENV = "AGENTMARKET_PRIVATE_KEYS"  # comma-separated hex keys for a remote endpoint
KEYSTORE_ENV = "AGENTMARKET_KEYSTORE"  # path to an encrypted keystore file
KEYSTORE_PASSWORD_ENV = "AGENTMARKET_KEYSTORE_PASSWORD"


_NPM_PLATFORMS = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "amd64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("linux", "arm64"): "linux-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
    ("darwin", "arm64"): "darwin-arm64",
    ("win32", "amd64"): "win32-amd64",
}


def _npm_anvil_binaries(node_modules: Path) -> list[Path]:
    """Where ``@foundry-rs/anvil`` puts the native binary under one node_modules, most likely first."""
    platform = _NPM_PLATFORMS.get((sys.platform, py_platform.machine().lower()), "linux-amd64")
    name = "anvil.exe" if sys.platform == "win32" else "anvil"
    scope = node_modules / "@foundry-rs"
    return [
        scope / f"anvil-{platform}" / "bin" / name,  # the platform package, hoisted next to the wrapper
        scope / "anvil" / "node_modules" / "@foundry-rs" / f"anvil-{platform}" / "bin" / name,  # nested
        scope / "anvil" / name,  # the wrapper's postinstall download when the optional package is missing
    ]


def anvil_binary(root: Path | None = None) -> Path:
    """The native anvil binary: ``$AGENTMARKET_ANVIL``, else ``anvil`` on PATH, else the npm package
    ``@foundry-rs/anvil`` in the nearest node_modules (``root``, the cwd and its parents, this checkout).

    The npm wrapper script (``node_modules/.bin/anvil``, a Node program that spawns the binary) is resolved
    to the binary itself: anvil must be this process's child so that it dies with it (PR_SET_PDEATHSIG).
    """
    override = os.environ.get("AGENTMARKET_ANVIL")
    if override:
        return Path(override)
    on_path = shutil.which("anvil")
    if on_path:
        found = Path(on_path).resolve()
        if found.suffix not in (".mjs", ".js"):
            return Path(on_path)
        # the npm wrapper (…/@foundry-rs/anvil/bin.mjs): its node_modules holds the binary
        wrapper_modules = found.parent.parent.parent
        for binary in _npm_anvil_binaries(wrapper_modules):
            if binary.is_file():
                return binary
    candidates = [root] if root else []
    here = Path.cwd().resolve()
    candidates += [here, *here.parents, Path(__file__).resolve().parent.parent]
    for base in candidates:
        for binary in _npm_anvil_binaries(base / "node_modules"):
            if binary.is_file():
                return binary
    raise ChainUnavailable(
        "anvil not found on PATH nor in node_modules/@foundry-rs/anvil "
        "(fix: install Foundry's anvil, or run `npm install @foundry-rs/anvil`, or set AGENTMARKET_ANVIL)"
    )


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Linux PR_SET_PDEATHSIG: anvil gets SIGTERM if this Python process dies, even by SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Chain:
    """A connected chain with funded, locally-signing accounts.

    Build one with :meth:`embedded`, :meth:`anvil` or :meth:`connect`. ``accounts`` hold private keys;
    their repr shows only the address.
    """

    def __init__(
        self,
        w3: Web3,
        kind: str,
        accounts: Sequence[LocalAccount],
        *,
        tester: Any = None,
        process: subprocess.Popen[bytes] | None = None,
        url: str | None = None,
    ):
        self.w3 = w3
        self.kind = kind
        provider = w3.provider
        if (
            kind != "embedded"
            and hasattr(provider, "cacheable_requests")
            and not provider.cache_allowed_requests
        ):
            # web3 asks eth_chainId before every call and send (14 of ~32 requests per trade): the chain id
            # of a connection does not change, so cache that one answer (and nothing else)
            provider.cacheable_requests = {RPCEndpoint("eth_chainId")}
            provider.cache_allowed_requests = True
        self.accounts: list[LocalAccount] = list(accounts)
        self.url = url
        self._tester = tester
        self._process = process
        self._chain_id: int | None = None
        self._transactor: Any = None
        # held across nonce reservation, signing and sending on a chain that has no mempool (embedded):
        # there a nonce must reach the node in order, so two threads of one account cannot interleave
        self.backend_lock: threading.RLock | None = None

    def _backend(self) -> Any:
        """The embedded backend's lock (a no-op context elsewhere)."""
        return self.backend_lock if self.backend_lock is not None else contextlib.nullcontext()

    def __repr__(self) -> str:
        where = self.url or "in-process"
        return f"Chain(kind={self.kind!r}, chain_id={self.chain_id}, at={where!r}, accounts={len(self.accounts)})"

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def embedded(cls, *, accounts: int = 10) -> Chain:
        """An in-process eth-tester (py-evm) chain: no process, no port. Accounts hold 1,000,000 ETH."""
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        backend = PyEVMBackend(
            genesis_parameters=PyEVMBackend.generate_genesis_params(overrides={"gas_limit": 60_000_000}),
            genesis_state=PyEVMBackend.generate_genesis_state(num_accounts=accounts),
        )
        tester = EthereumTester(backend=backend)
        provider = EthereumTesterProvider(tester)
        # py-evm is not thread-safe: one request at a time, whichever thread (and whichever path: web3's
        # middleware stack or the Transactor's direct transport) it comes from. Without this, agents in
        # threads lose transactions ("BlockNotFound") and can read each other's half-built blocks.
        lock = threading.RLock()
        inner = provider.make_request

        def make_request(method: Any, params: Any) -> Any:
            with lock:
                return inner(method, params)

        provider.make_request = make_request  # type: ignore[method-assign]
        w3 = Web3(provider)
        keys = [Account.from_key(k.to_bytes()) for k in backend.account_keys]
        chain = cls(w3, "embedded", keys, tester=tester)
        chain.backend_lock = lock
        return chain

    @classmethod
    def anvil(
        cls,
        *,
        accounts: int = 10,
        port: int | None = None,
        args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> Chain:
        """Start anvil (see :func:`anvil_binary`) on a free loopback port; it stops on :meth:`close` or at exit."""
        binary = anvil_binary()
        port = port or free_port()
        cmd = [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--accounts",
            str(accounts),
            "--gas-limit",
            "60000000",
            # anvil writes states it evicts from memory to ~/.foundry/anvil/tmp and never removes them:
            # a long run (a simulation, a million mined blocks) filled a 250 GB disk. Old states are
            # dropped instead; nothing here reads state more than a few blocks back.
            "--max-persisted-states",
            "0",
            *args,
        ]
        process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        )
        url = f"http://127.0.0.1:{port}"
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise ChainUnavailable(f"anvil exited with code {process.returncode}: {err.strip()[:300]}")
            try:
                if w3.is_connected():
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                process.kill()
                raise ChainUnavailable(f"anvil did not answer on {url} within {startup_timeout:.0f}s")
            time.sleep(0.05)
        Account.enable_unaudited_hdwallet_features()
        keys = [
            Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(accounts)
        ]
        chain = cls(w3, "anvil", keys, process=process, url=url)
        atexit.register(chain.close)
        return chain

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        keys: Sequence[str] | None = None,
        keystore: str | Path | None = None,
        password: str | None = None,
        require_funded: bool = True,
    ) -> Chain:
        """Connect to any HTTP(S) JSON-RPC endpoint.

        Accounts come from ``keys``, else ``$AGENTMARKET_PRIVATE_KEYS`` (comma-separated), else an
        encrypted keystore (``keystore`` or ``$AGENTMARKET_KEYSTORE``, password from ``password`` or
        ``$AGENTMARKET_KEYSTORE_PASSWORD``). Keys are never taken from the command line or printed.
        """
        if url.startswith(("ws://", "wss://")):
            # web3 8 removed the synchronous LegacyWebSocketProvider (its WebSocketProvider needs
            # AsyncWeb3): the import used to fail with ImportError here; say so in the project's error.
            raise ConfigError(
                f"WebSocket RPC URLs are not supported with web3 8's synchronous client: {url!r} "
                "(fix: use the node's http:// or https:// endpoint)"
            )
        if url.startswith(("http://", "https://")):
            provider = Web3.HTTPProvider(url, request_kwargs={"timeout": 30})
        else:
            raise ConfigError(f"unsupported RPC URL scheme in {url!r} (fix: use http:// or https://)")
        return cls.from_web3(
            Web3(provider), keys=keys, keystore=keystore, password=password, require_funded=require_funded
        )

    @classmethod
    def from_web3(
        cls,
        w3: Web3,
        *,
        keys: Sequence[str] | None = None,
        keystore: str | Path | None = None,
        password: str | None = None,
        require_funded: bool = True,
    ) -> Chain:
        """Use a ``Web3`` the caller built (its provider, request headers, authentication and middleware
        are used by every path, the batched fast path included). Accounts as in :meth:`connect`."""
        url = getattr(w3.provider, "endpoint_uri", None)
        where = str(url) if url else type(w3.provider).__name__
        try:
            _ = w3.eth.chain_id  # one round trip: an unreachable node fails here, not mid-trade
        except Exception as exc:
            raise ChainUnavailable(
                f"cannot reach {where}: {type(exc).__name__} "
                "(fix: check the URL, its credentials, and that the node is running)"
            ) from None
        accounts = _load_accounts(keys, keystore, password)
        chain = cls(w3, "rpc", accounts, url=str(url) if url else None)
        if require_funded:
            for account in accounts:
                if w3.eth.get_balance(account.address) == 0:
                    raise ConfigError(
                        f"account {account.address} has no funds on chain {chain.chain_id} "
                        "(fix: fund it, or give the key of a funded account)"
                    )
        return chain

    @classmethod
    def from_name(cls, name: str | None) -> Chain:
        """``None``/``"embedded"``, ``"anvil"``, or a JSON-RPC URL."""
        if name in (None, "", "embedded"):
            return cls.embedded()
        if name == "anvil":
            return cls.anvil()
        return cls.connect(str(name))

    # -- properties --------------------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def transactor(self) -> Any:
        """The shared :class:`agentmarket.tx.Transactor` (local signing, nonces, revert decoding)."""
        if self._transactor is None:
            from .tx import Transactor

            self._transactor = Transactor(self)
        return self._transactor

    @property
    def is_local(self) -> bool:
        return self.kind in ("embedded", "anvil")

    # -- accounts ----------------------------------------------------------------------------------

    def new_account(self, fund: int = 0, *, funder: LocalAccount | None = None) -> LocalAccount:
        """A fresh key, optionally funded with ``fund`` wei from ``funder`` (default: first account)."""
        account: LocalAccount = Account.create()
        if fund:
            self.transactor.send_value(funder or self.accounts[0], account.address, fund)
        return account

    # -- time and snapshots --------------------------------------------------------------------------

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def _require_local(self, what: str) -> None:
        if not self.is_local:
            raise ConfigError(f"{what} needs a local chain (embedded or anvil), not {self.kind}")

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""
        self._require_local("mine")
        if self._tester is not None:
            with self._backend():
                self._tester.mine_blocks(blocks)
        else:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    @contextlib.contextmanager
    def batch_mining(self, *, max_blocks: int = 10_000) -> Iterator[None]:
        """Transactions sent inside the block are mined together when it exits, in as few blocks as the
        gas limit allows (anvil only; elsewhere a no-op).

        Automining mines one block per transaction, and at simulator scale (thousands of transactions a
        round) building those blocks is most of anvil's work: batching cut its CPU time about five-fold
        (1,000 agents). Automine is switched back on when the block exits, even on an error, after the
        pool's pending transactions are mined; transactions stuck behind a nonce gap ("queued") stay.
        """
        if self.kind != "anvil":
            yield
            return
        rpc = self.transactor.transport
        if not rpc.request("anvil_getAutomine", []):
            yield  # interval or manual mining already: leave the node's mode alone
            return
        rpc.request("evm_setAutomine", [False])
        try:
            yield
        finally:
            try:
                for _ in range(max_blocks):
                    status = rpc.request("txpool_status", [])
                    if int(status["pending"], 16) == 0:
                        break
                    rpc.request("evm_mine", [])
            finally:
                rpc.request("evm_setAutomine", [True])

    def set_next_timestamp(self, timestamp: int | datetime) -> None:
        """The next block (the next transaction, on automining chains) gets exactly this timestamp."""
        self._require_local("set_next_timestamp")
        ts = (
            int(timestamp.replace(tzinfo=timestamp.tzinfo or timezone.utc).timestamp())
            if isinstance(timestamp, datetime)
            else int(timestamp)
        )
        if self._tester is not None:
            # eth-tester: set the pending block's timestamp without mining it
            with self._backend():
                self._tester.backend.chain.header = self._tester.backend.chain.header.copy(timestamp=ts)
        else:  # through the transactor's JSON-RPC transport: per-step clocks (property machines) are hot
            self._node_time("evm_setNextBlockTimestamp", ts)

    def _node_time(self, method: str, timestamp: int) -> None:
        """A clock call to the node; a refusal (e.g. a time before the latest block) is a typed error."""
        from .rpc import RPCError

        try:
            self.transactor.transport.request(method, [timestamp])
        except RPCError as error:
            raise InvalidInput(
                f"the node refused {method}({timestamp}): {error.message}", param="timestamp"
            ) from None

    def advance_time(self, seconds: int) -> int:
        """Move time forward by ``seconds`` and mine a block at the new time; returns its timestamp."""
        self._require_local("advance_time")
        target = self.now() + int(seconds)
        self.travel_to(target)
        return target

    def travel_to(self, timestamp: int) -> None:
        """Mine a block whose timestamp is exactly ``timestamp`` (must not go backwards)."""
        self._require_local("travel_to")
        if self._tester is not None:
            # eth-tester's own time_travel lands one second early; set the header and mine instead
            self.set_next_timestamp(int(timestamp))
            with self._backend():
                self._tester.mine_blocks(1)
        else:
            self._node_time("evm_mine", int(timestamp))

    def snapshot(self) -> Any:
        """Take a snapshot; pass the returned id to :meth:`revert`."""
        self._require_local("snapshot")
        if self._tester is not None:
            with self._backend():
                return self._tester.take_snapshot()
        return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert(self, snapshot_id: Any) -> None:
        """Return to a snapshot (anvil's snapshots are single-use; eth-tester's are reusable)."""
        self._require_local("revert")
        if self._tester is not None:
            with self._backend():
                self._tester.revert_to_snapshot(snapshot_id)
        else:
            result = self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]
            if not result.get("result"):
                raise ConfigError(f"anvil refused to revert to snapshot {snapshot_id}")
        if self._transactor is not None:
            self._transactor.reset_nonces()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop a node this object started (anvil); a no-op otherwise."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_accounts(
    keys: Sequence[str] | None, keystore: str | Path | None, password: str | None
) -> list[LocalAccount]:
    raw = list(keys or [])
    if not raw and os.environ.get(KEYS_ENV):
        raw = [k.strip() for k in os.environ[KEYS_ENV].split(",") if k.strip()]
    accounts: list[LocalAccount] = []
    for index, key in enumerate(raw):
        try:
            accounts.append(Account.from_key(key))
        except Exception:
            raise ConfigError(f"private key #{index + 1} is malformed (expected 32 bytes of hex)") from None
    keystore = keystore or os.environ.get(KEYSTORE_ENV)
    if keystore:
        password = password if password is not None else os.environ.get(KEYSTORE_PASSWORD_ENV)
        if password is None:
            raise ConfigError(f"keystore given but no password (fix: set {KEYSTORE_PASSWORD_ENV})")
        accounts.append(load_keystore(keystore, password))
    return accounts


def load_keystore(path: str | Path, password: str) -> LocalAccount:
    """Decrypt an Ethereum V3 keystore file into an account."""
    import json

    try:
        data = json.loads(Path(path).read_text())
        account: LocalAccount = Account.from_key(Account.decrypt(data, password))
        return account
    except FileNotFoundError:
        raise ConfigError(f"keystore file {path} not found") from None
    except ValueError:
        raise ConfigError(
            f"keystore {path} could not be decrypted (wrong password or corrupt file)"
        ) from None


def save_keystore(account: LocalAccount, path: str | Path, password: str) -> Path:
    """Write ``account`` as an encrypted V3 keystore (mode 0600, written atomically)."""
    import json
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    encrypted = Account.encrypt(account.key, password)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(encrypted, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target

"""What every contract client shares: the :class:`ContractClient` plumbing (contract from its shipped
artifact, event decoding by topic, ``from_suite``/``as_``/``repr``, sending) and the ERC-20 / ERC-1271
helpers the clients call before sending (balances, allowances, approvals, contract-wallet signatures).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import event_abi_to_log_topic, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from .. import validate
from ..chain import Chain
from ..compiler import load_artifact
from ..errors import InsufficientAllowance, InsufficientFunds, InvalidInput, NotAuthorized
from ..logscan import deployment_block, get_logs
from ..reads import Read
from ..types import ETH

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "o", "type": "address"}, {"name": "s", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "s", "type": "address"}, {"name": "v", "type": "uint256"}],
        "outputs": [],
    },
]
# approve is declared without outputs so USDT-like tokens (no return value) work too.
APPROVE_GAS_KEY = "erc20.approve"  # not in the snapshot (the token's cost, not ours): estimated
ERC1271_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [{"name": "h", "type": "bytes32"}, {"name": "s", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    },
]


# -- ERC-20 and ERC-1271 ----------------------------------------------------------------------------------


def contract_address(address: str | Contract) -> ChecksumAddress:
    """The checksummed address of a web3 contract or an address string."""
    return address.address if isinstance(address, Contract) else validate.address(address, "address")


def erc20(w3: Web3, asset: str) -> Contract:
    """The ERC-20 token at ``asset`` (balanceOf, allowance, approve)."""
    return w3.eth.contract(address=to_checksum_address(asset), abi=ERC20_ABI)


def balance_of(w3: Web3, asset: str, who: str) -> int:
    """ETH (``asset == ETH``) or ERC-20 balance of ``who``."""
    who = to_checksum_address(who)
    if asset == ETH:
        return int(w3.eth.get_balance(who))
    return int(erc20(w3, asset).functions.balanceOf(who).call())


def allowance_of(w3: Web3, asset: str, owner: str, spender: str) -> int:
    """How much of the ERC-20 ``asset`` ``spender`` may pull from ``owner``."""
    return int(
        erc20(w3, asset).functions.allowance(to_checksum_address(owner), to_checksum_address(spender)).call()
    )


def erc1271_accepts(w3: Web3, wallet: str, digest: bytes, signature: bytes) -> bool:
    """True when the contract ``wallet`` answers ``isValidSignature(digest, signature)`` with the magic value
    (a reverting or otherwise failing wallet refuses)."""
    contract = w3.eth.contract(address=to_checksum_address(wallet), abi=ERC1271_ABI)
    try:
        return bytes(contract.functions.isValidSignature(digest, signature).call()) == ERC1271_MAGIC
    except Exception:
        return False


def require_eth(who: str, balance: int, amount: int) -> None:
    """Raise :class:`InsufficientFunds` unless ``balance`` wei of ``who`` covers ``amount``."""
    if balance < amount:
        raise InsufficientFunds(f"{who} holds {balance} wei, needs {amount} plus gas")


# -- the client base ----------------------------------------------------------------------------------------


class ContractClient:
    """A client for one deployed contract, acting as ``account`` (None for reads only).

    Subclasses name the shipped artifact (``ARTIFACT``, also the contract's name in a deployed suite) and
    the events they decode by topic (``EVENTS``: ``self._events[name]``, ``self._topics[topic] -> name``).
    """

    ARTIFACT: ClassVar[str]
    EVENTS: ClassVar[tuple[str, ...]] = ()
    SPENDER: ClassVar[str | None] = None  # what messages call this contract (default: ARTIFACT)
    # Gas: every send names its gas-snapshot key, ``<GAS_FAMILY>.<function in snake case>`` unless
    # GAS_KEYS maps the function to another key; an unknown key falls back to estimation.
    GAS_FAMILY: ClassVar[str] = ""
    GAS_KEYS: ClassVar[dict[str, str]] = {}
    #: simulate each transaction before signing (one eth_call), so a revert the pre-flight checks did not
    #: foresee raises its typed error with nothing sent
    SIMULATE: ClassVar[bool] = True

    def __init__(
        self,
        chain: Chain,
        address: str | Contract,
        account: LocalAccount | None = None,
        *,
        from_block: int | None = None,
    ):
        self._bind(chain, account, from_block)
        addr = contract_address(address)
        self.contract: Contract = self.w3.eth.contract(
            address=addr,
            abi=load_artifact(self.ARTIFACT)["abi"],
        )
        self.address: ChecksumAddress = addr
        # event lookups start here: the contract's deployment block when a manifest recorded it
        self.from_block = deployment_block(self.w3, addr) if from_block is None else int(from_block)
        self._events = {name: getattr(self.contract.events, name)() for name in self.EVENTS}
        self._topics = {HexBytes(event_abi_to_log_topic(e.abi)): name for name, e in self._events.items()}

    def _bind(self, chain: Chain, account: LocalAccount | None, from_block: int | None) -> None:
        """What every client holds besides its contract(s): the chain, the acting account, where event
        scans start, and the receipt of the last transaction it sent."""
        self.chain = chain
        self.w3 = chain.w3
        self.account = account
        self.from_block = 0 if from_block is None else int(from_block)
        #: receipt of the last transaction this client sent (its hash and gas, for callers that report them)
        self.last_receipt: Any = None

    @classmethod
    def from_suite(cls, suite: Any, account: LocalAccount | None = None) -> Self:
        """The client of this contract in a deployed :class:`~agentmarket.deploy.Suite`."""
        return cls(suite.chain, suite[cls.ARTIFACT], account)

    def as_(self, account: LocalAccount) -> Self:
        """The same contract(s), acting as another account (the one name every client family uses)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.account = account
        clone.last_receipt = None
        return clone

    def __repr__(self) -> str:  # the account's address only, never its key
        who = self.account.address if self.account else None
        return f"{type(self).__name__}(address={self.address}, account={who})"

    def now(self) -> int:
        """Timestamp the next block will (at least) have: the pending block's, else latest + 1."""
        try:
            return int(self.chain.transactor.read([Read.timestamp("pending")])[0])
        except Exception:
            return self.chain.now() + 1

    def approve(self, asset: str, amount: int, *, spender: str | None = None) -> Any:
        """Approve this contract (or ``spender``) to pull exactly ``amount`` of ``asset`` from this
        client's account; the receipt."""
        asset = validate.asset(self.w3, asset)
        if asset == ETH:
            raise InvalidInput("ETH needs no approval; approve an ERC-20 token address", param="asset")
        to = self.address if spender is None else validate.address(spender, "spender", nonzero=True)
        fn = self._token(asset).functions.approve(to, validate.amount(amount))
        return self._send(fn, gas_key=APPROVE_GAS_KEY)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _logs(self, topics: list[Any] | None = None, *, from_block: int | None = None) -> list[Any]:
        """This contract's logs matching ``topics`` from ``from_block`` (default: :attr:`from_block`) to the
        latest block, read in windows the provider accepts (:func:`agentmarket.logscan.get_logs`)."""
        params: dict[str, Any] = {"address": self.address}
        if topics is not None:
            params["topics"] = topics
        return get_logs(self.w3, params, self.from_block if from_block is None else from_block)

    @property
    def account_address(self) -> ChecksumAddress:
        """The acting account's address (:class:`~agentmarket.errors.NotAuthorized` when there is none);
        ``address`` is the contract's."""
        if self.account is None:
            raise NotAuthorized(f"this {type(self).__name__} has no account (use .as_(account))")
        return ChecksumAddress(to_checksum_address(self.account.address))

    def _me(self) -> str:
        return self.account_address

    def _token(self, asset: str) -> Contract:
        return erc20(self.w3, asset)

    def _gas_key(self, fn: Any, value: int) -> str:
        """The gas-snapshot key of calling ``fn`` (with ``value`` wei attached)."""
        name = str(fn.fn_name)
        return self.GAS_KEYS.get(name) or f"{self.GAS_FAMILY or self.ARTIFACT.lower()}.{_snake(name)}"

    def _send(
        self,
        fn: Any,
        value: int = 0,
        *,
        gas_key: str | None = None,
        gas_count: int = 1,
        reads: Sequence[Read] = (),
        check: Callable[[list[Any]], None] | None = None,
    ) -> Any:
        """Send ``fn`` (a web3.py ``ContractFunction`` or a :class:`~agentmarket.calldata.PreparedCall`)
        from this client's account through the chain's one pipeline (gas from the snapshot key,
        simulation, the account's signing policy, receipt, typed errors). ``reads``/``check``: pre-flight
        reads that travel in one JSON-RPC batch with the simulation; ``check`` raises to stop the send."""
        if self.account is None:
            raise NotAuthorized(f"this {type(self).__name__} has no account (use .as_(account))")
        self.last_receipt = self.chain.transactor.transact(
            self.account,
            fn,
            value=value,
            gas_key=gas_key or self._gas_key(fn, value),
            gas_count=gas_count,
            simulate=self.SIMULATE,
            reads=reads,
            check=check,
        )
        if log.isEnabledFor(logging.DEBUG):
            self._log_events(self.last_receipt)
        return self.last_receipt

    def _decoders(self) -> dict[tuple[str, HexBytes], Any]:
        """(contract address, topic) -> web3 event, for every event of the contract(s) this client drives."""
        decoders = self.__dict__.get("_all_events")
        if decoders is None:
            decoders = _event_decoders(self.contract)
            self.__dict__["_all_events"] = decoders
        return decoders

    def _log_events(self, receipt: Any) -> None:
        """Log the decoded events of ``receipt`` at DEBUG (names and arguments: never key material)."""
        decoders = self._decoders()
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        for entry in receipt["logs"]:
            topics = entry["topics"]
            event = decoders.get((entry["address"], HexBytes(topics[0]))) if topics else None
            if event is not None:
                decoded = event.process_log(entry)
                log.debug(
                    "%s %s: %s%s", type(self).__name__, tx_hash, decoded["event"], _loggable(decoded["args"])
                )

    def _ensure_funds(self, asset: str, amount: int, *, approve: bool, spender: str | None = None) -> None:
        """Raise unless this account holds ``amount`` of ``asset`` and (ERC-20) this contract (or
        ``spender``) may pull it; with ``approve`` a short allowance is raised to exactly ``amount``."""
        me = self._me()
        if asset == ETH:
            require_eth(me, balance_of(self.w3, ETH, me), amount)
            return
        token = self._token(asset)
        balance = int(token.functions.balanceOf(me).call())
        if balance < amount:
            raise InsufficientFunds(f"{me} holds {balance} of token {asset}, needs {amount}")
        to = self.address if spender is None else spender
        allowed = int(token.functions.allowance(me, to).call())
        if allowed < amount:
            if not approve:
                raise InsufficientAllowance(
                    f"{self.SPENDER or self.ARTIFACT} {to} may spend {allowed} of {asset} for {me}, needs {amount} "
                    "(pass approve=True to approve exactly that)"
                )
            self.approve(asset, amount, spender=to)


def _loggable(value: Any) -> Any:
    """Event arguments as a log line shows them: bytes as 0x-hex, nested structs as plain dicts."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {k: _loggable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_loggable(v) for v in value]
    return value


def _event_decoders(contract: Contract) -> dict[tuple[str, HexBytes], Any]:
    """(address, topic) -> web3 event for every event in ``contract``'s ABI."""
    return {
        (contract.address, HexBytes(event_abi_to_log_topic(e))): getattr(contract.events, e["name"])()
        for e in contract.abi
        if e["type"] == "event"
    }


def _snake(name: str) -> str:
    """``acceptMany`` -> ``accept_many``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

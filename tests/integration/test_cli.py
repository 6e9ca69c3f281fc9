"""The ``agentmarket`` command as a user runs it (subprocess): --version, --json on every command, and a
typed one-line error with exit status 2 (never a traceback) for user errors, with nothing sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentmarket import __version__
from agentmarket.chain import KEYS_ENV, KEYSTORE_ENV, Chain

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, keys: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (KEYS_ENV, KEYSTORE_ENV)}
    if keys is not None:
        env[KEYS_ENV] = keys
    return subprocess.run(
        [sys.executable, "-m", "agentmarket", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], kind: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and kind in result.stderr, result.stderr


def _state(chain: Chain) -> tuple[int, int]:
    return int(chain.w3.eth.block_number), int(chain.w3.eth.get_transaction_count(chain.accounts[0].address))


def test_version() -> None:
    result = _cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"agentmarket {__version__}"


def test_usage_and_config_errors_are_one_line_or_json() -> None:
    _one_line_error(_cli("relay", "--db", "bogus://x"), "ConfigError")  # before any chain is started
    result = _cli("--json", "deploy", "--fee-bps", "abc")
    assert result.returncode == 2 and json.loads(result.stderr)["error"] == "UsageError"
    _one_line_error(_cli("deploy", "--rpc", "ftp://node"), "ConfigError")


@pytest.mark.parametrize("command", ["compile", "deploy", "chain", "surveil", "demo", "relay", "mcp"])
def test_every_command_takes_json(command: str) -> None:
    result = _cli(command, "--help")
    assert result.returncode == 0 and "--json" in result.stdout


@pytest.mark.anvil
def test_deploy_without_an_account_is_a_typed_error_and_sends_nothing(anvil: Chain) -> None:
    before = _state(anvil)
    result = _cli("deploy", "--rpc", str(anvil.url), "--no-manifest")
    _one_line_error(result, "ConfigError")
    assert "AGENTMARKET_PRIVATE_KEYS" in result.stderr  # the fix is named
    result = _cli("--json", "deploy", "--rpc", str(anvil.url), "--no-manifest")
    assert result.returncode == 2 and result.stdout == ""
    assert json.loads(result.stderr)["error"] == "ConfigError"
    assert _state(anvil) == before


@pytest.mark.anvil
def test_deploy_json(anvil: Chain) -> None:
    key = "0x" + anvil.accounts[0].key.hex()
    result = _cli("deploy", "--rpc", str(anvil.url), "--no-manifest", "--json", keys=key)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["chainId"] == anvil.chain_id and document["kind"] == "rpc"
    escrow = document["contracts"]["AgentEscrow"]
    assert escrow["deployed"] is True
    assert bytes(anvil.w3.eth.get_code(escrow["address"]))  # really deployed, at the block it names
    assert (
        anvil.w3.eth.get_transaction_receipt(anvil.w3.eth.get_block(escrow["block"])["transactions"][0])[
            "contractAddress"
        ]
        == escrow["address"]
    )


@pytest.mark.anvil
def test_demo_on_a_remote_rpc_refuses_before_sending(anvil: Chain) -> None:
    """The demo moves the clock: on a URL chain it refuses before any transaction (it used to lock
    0.0445 ETH and then fail)."""
    key = "0x" + anvil.accounts[0].key.hex()
    before = _state(anvil)
    _one_line_error(_cli("demo", "--chain", str(anvil.url), keys=key), "ConfigError")
    result = _cli("demo", "--chain", str(anvil.url), "--json", keys=key)
    assert result.returncode == 2 and json.loads(result.stderr)["error"] == "ConfigError"
    assert _state(anvil) == before


def test_compile_a_users_own_project(tmp_path: Path) -> None:
    """``compile --project DIR`` compiles DIR/contracts into DIR/artifacts (no package.json needed)."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Counter.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\n"
        "contract Counter { uint256 public n; function bump() external { n += 1; } }\n"
    )
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")  # solc-js, as a user's npm install
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "notes.json").write_text('{"mine": true}')  # not an artifact: kept
    result = _cli("compile", "--project", str(tmp_path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["contracts"] == ["Counter"]
    artifact = json.loads((tmp_path / "artifacts" / "Counter.json").read_text())
    assert {f["name"] for f in artifact["abi"] if f["type"] == "function"} == {"n", "bump"}
    assert json.loads((tmp_path / "artifacts" / "notes.json").read_text()) == {"mine": True}
    # a directory without contracts/ is a typed one-line error
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(_cli("compile", "--project", str(empty)), "CompilerUnavailable")
    shutil.rmtree(tmp_path / "artifacts")

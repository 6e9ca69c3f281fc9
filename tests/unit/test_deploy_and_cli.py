"""Deployment manifest and the CLI's one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import ContractSpec, deploy_suite, load_manifest
from agentmarket.errors import ConfigError

SPECS = [ContractSpec("Reverter")]


def test_manifest_written_and_reused(chain: Chain, tmp_path):
    path = tmp_path / "m.json"
    first = deploy_suite(chain, manifest=path, specs=SPECS)
    assert first.deployed == ["Reverter"]
    book = json.loads(path.read_text())
    entry = book["contracts"]["Reverter"]
    assert book["chainId"] == chain.chain_id and entry["address"] == first["Reverter"].address
    assert {"txHash", "block", "artifactHash", "codeHash"} <= set(entry)
    second = deploy_suite(chain, manifest=path, specs=SPECS)
    assert second.deployed == [] and second["Reverter"].address == first["Reverter"].address


def test_manifest_with_changed_code_redeploys(chain: Chain, tmp_path):
    path = tmp_path / "m.json"
    deploy_suite(chain, manifest=path, specs=SPECS)
    book = json.loads(path.read_text())
    book["contracts"]["Reverter"]["artifactHash"] = "0" * 64
    path.write_text(json.dumps(book))
    assert deploy_suite(chain, manifest=path, specs=SPECS).deployed == ["Reverter"]


def test_manifest_for_another_chain_is_refused(chain: Chain, tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"chainId": 1, "contracts": {}}))
    with pytest.raises(ConfigError, match="for chain 1"):
        deploy_suite(chain, manifest=path, specs=SPECS)
    assert json.loads(path.read_text()) == {"chainId": 1, "contracts": {}}  # untouched


def test_fee_cap_checked_before_anything_is_sent(chain: Chain, tmp_path):
    block = chain.w3.eth.block_number
    with pytest.raises(ConfigError):
        deploy_suite(chain, fee_bps=501, manifest=tmp_path / "m.json", specs=SPECS)
    assert chain.w3.eth.block_number == block and not (tmp_path / "m.json").exists()


def test_load_missing_manifest_is_empty(tmp_path):
    assert load_manifest(tmp_path / "none.json", 5) == {"chainId": 5, "contracts": {}}


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentmarket", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize("command", ["compile", "deploy", "chain", "demo"])
def test_cli_help(command):
    result = _cli(command, "--help")
    assert result.returncode == 0 and "usage: agentmarket" in result.stdout


def test_cli_unreachable_rpc_is_one_line_exit_2():
    result = _cli("deploy", "--rpc", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "ChainUnavailable" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_deploy_embedded(tmp_path):
    result = _cli("deploy", "--manifest", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    assert "chain 131277322940537 (embedded)" in result.stdout
    assert json.loads((tmp_path / "m.json").read_text())["chainId"] == 131277322940537


def test_cli_compile_check_reports_mismatch(tmp_path):
    """In a tree whose sources differ from the shipped artifacts, --check fails and names the fix.

    (That the shipped artifacts match this checkout is test_compiler.test_shipped_artifacts_match_sources.)
    """
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "contracts").mkdir(parents=True)
    shutil.copy(root / "contracts" / "test" / "Reverter.sol", tmp_path / "contracts" / "Reverter.sol")
    shutil.copy(root / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(root / "node_modules")
    result = _cli("compile", "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert "AgentEscrow: no longer produced by the sources" in result.stderr
    assert "fix: run `agentmarket compile`" in result.stderr

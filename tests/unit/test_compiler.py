"""Compiler: pinned solc, cache, CompilerError with file:line, and the shipped-artifact check."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from helpers import load_artifact

from agentmarket import compiler
from agentmarket.errors import CompilerError, CompilerUnavailable

ROOT = Path(__file__).resolve().parents[2]


SECOND = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Second { function two() external pure returns (uint256) { return 2; } }
"""


def _copy_tree(tmp_path: Path) -> Path:
    """A small source tree (Reverter plus one more contract): compiles in seconds, not half a minute."""
    (tmp_path / "contracts").mkdir(parents=True)
    shutil.copy(ROOT / "contracts" / "test" / "Reverter.sol", tmp_path / "contracts" / "Reverter.sol")
    (tmp_path / "contracts" / "Second.sol").write_text(SECOND)
    shutil.copy(ROOT / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    return tmp_path


def test_shipped_artifacts_match_sources():
    assert compiler.check_artifacts(ROOT) == []


def test_one_character_change_fails_the_check(tmp_path):
    tree = _copy_tree(tmp_path / "src")
    shipped = tmp_path / "artifacts"
    compiler.write_artifacts(compiler.compile_sources(tree), shipped)
    assert compiler.check_artifacts(tree, directory=shipped) == []
    target = tree / "contracts" / "Reverter.sol"
    target.write_text(target.read_text().replace("counter += 1;", "counter += 2;", 1))
    # only the edited unit's artifact differs: each records its own source hash
    assert compiler.check_artifacts(tree, directory=shipped) == ["Reverter: differs from a fresh compile"]


def test_warm_compile_uses_the_cache(tmp_path):
    tree = _copy_tree(tmp_path)
    first = compiler.compile_sources(tree)
    started = time.perf_counter()
    second = compiler.compile_sources(tree)
    assert time.perf_counter() - started < 1.0  # a cache hit reads one JSON file; solc-js takes seconds
    assert first == second
    assert len(list((tree / ".cache" / "solc").glob("*.json"))) == 1


def test_artifact_fields():
    artifact = load_artifact("Reverter")
    assert artifact["compiler"]["version"] == compiler.SOLC_VERSION
    assert artifact["compiler"]["settings"]["evmVersion"] == "cancun"
    assert artifact["compiler"]["settings"]["optimizer"]["enabled"] is True
    assert artifact["bytecode"].startswith("0x60") and len(artifact["deployedBytecode"]) > 100
    assert len(artifact["sourceHash"]) == 64


def test_compiler_error_carries_file_and_line(tmp_path):
    tree = _copy_tree(tmp_path)
    broken = tree / "contracts" / "Broken.sol"
    broken.write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Broken {\n  uint x\n}\n"
    )
    with pytest.raises(CompilerError) as info:
        compiler.compile_sources(tree)
    assert info.value.messages[0].startswith("contracts/Broken.sol:5:1: ParserError")


def test_missing_node_modules_names_the_fix(tmp_path):
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    shutil.copy(ROOT / "package.json", tmp_path / "package.json")
    with pytest.raises(CompilerUnavailable) as info:
        compiler.compile_sources(tmp_path)
    assert "npm ci" in str(info.value)


def test_explicit_native_solc_that_does_not_exist(tmp_path):
    tree = _copy_tree(tmp_path)
    with pytest.raises(CompilerUnavailable):
        compiler.compile_sources(tree, solc_path=tmp_path / "no-such-solc", use_cache=False)


def test_mocks_are_a_test_build_outside_the_package():
    """Issue 13: the package ships only runtime contracts; contracts/test/ compiles to tests/artifacts/."""
    shipped = {p.stem for p in compiler.ARTIFACTS_DIR.glob("*.json")}
    mocks = {p.stem for p in compiler.test_artifacts_dir(ROOT).glob("*.json")}
    assert {"Reverter", "SenderTaxToken", "HookToken", "FeeOnTransferToken"} <= mocks
    assert not shipped & mocks
    assert {"AgentEscrow", "MockERC20"} <= shipped  # MockERC20 is Market.token's local test token
    assert all(not unit.startswith(compiler.TEST_SOURCES) for unit in compiler.source_files(ROOT))
    assert compiler.check_artifacts(ROOT, test=True) == []


def test_mock_errors_are_not_in_the_production_error_table():
    """A fresh interpreter (no test conftest) knows the package's errors and none of the mocks'."""
    import subprocess
    import sys

    probe = (
        "from agentmarket import errors\n"
        "for name in ('EscrowInvalidState', 'ReverterCustom', 'HookReceiverRefused'):\n"
        "    try:\n"
        "        errors.revert_class(name); print(name, 'yes')\n"
        "    except AttributeError:\n"
        "        print(name, 'no')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["EscrowInvalidState yes", "ReverterCustom no", "HookReceiverRefused no"]

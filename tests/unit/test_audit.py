"""`make audit` plumbing: the Slither input covers every contract and compiles through the solc-js front.

Slither itself runs in `make audit` (its own virtualenv), never under pytest.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from agentmarket import compiler
from tools import audit

ROOT = Path(__file__).resolve().parents[2]


def _contract_names(ast: dict) -> set[str]:
    return {node["name"] for node in ast.get("nodes", []) if node.get("nodeType") == "ContractDefinition"}


def test_input_covers_every_source_with_project_settings():
    data = audit.standard_input(ROOT)
    assert set(data["sources"]) == set(compiler.source_files(ROOT))
    assert all(unit.startswith("contracts/") for unit in data["sources"])
    settings = data["settings"]
    for key in ("evmVersion", "optimizer", "remappings"):
        assert settings[key] == compiler.SETTINGS[key]
    selection = settings["outputSelection"]["*"]
    assert {"abi", "evm.bytecode", "evm.deployedBytecode"} <= set(selection["*"])
    assert selection[""] == ["ast"]


GUARDED = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
interface IGuarded { function f() external; }
contract Guarded is IGuarded, ReentrancyGuardTransient { function f() external nonReentrant {} }
"""


def _small_tree(tmp_path):
    """Reverter plus a contract with an OpenZeppelin import: the full suite is `make audit`'s job."""
    tree = tmp_path / "tree"
    (tree / "contracts" / "test").mkdir(parents=True)
    shutil.copy(ROOT / "contracts" / "test" / "Reverter.sol", tree / "contracts" / "test" / "Reverter.sol")
    (tree / "contracts" / "Guarded.sol").write_text(GUARDED)
    shutil.copy(ROOT / "package.json", tree / "package.json")
    (tree / "node_modules").symlink_to(ROOT / "node_modules")
    return tree


def test_input_compiles_through_the_front_like_crytic_compile(tmp_path):
    """Run the generated wrapper exactly as crytic-compile's solc-json platform does."""
    tree = _small_tree(tmp_path)
    input_file, wrapper = audit.write_input(tree, tmp_path / "out")
    version = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, check=True)
    assert re.findall(r"\d+\.\d+\.\d+", version.stdout)[0] == compiler.SOLC_VERSION
    proc = subprocess.run(
        [str(wrapper), "--standard-json", "--allow-paths", str(tree)],
        input=input_file.read_text(),
        capture_output=True,
        text=True,
        cwd=tree,
        check=True,
        timeout=300,
    )
    output = json.loads(proc.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    assert errors == []
    sources = json.loads(input_file.read_text())["sources"]
    for unit in sources:
        ast = output["sources"][unit]["ast"]  # every project source has an AST
        compiled = set(output["contracts"].get(unit, {}))
        assert _contract_names(ast) == compiled, unit  # every contract, interface and library is covered
        for name, contract in output["contracts"].get(unit, {}).items():
            assert "sourceMap" in contract["evm"]["bytecode"], f"{unit}:{name}"
            assert "sourceMap" in contract["evm"]["deployedBytecode"], f"{unit}:{name}"
    # OpenZeppelin imports resolve through the remapping to files Slither can read back from disk
    for unit in output["sources"]:
        assert (tree / unit).is_file(), unit


def _report(*detectors: tuple[str, str]) -> dict:
    return {
        "success": True,
        "error": None,
        "results": {
            "detectors": [
                {
                    "check": check,
                    "impact": impact,
                    "confidence": "High",
                    "description": f"{check} here\n",
                    "elements": [
                        {"source_mapping": {"filename_relative": "contracts/x/X.sol", "lines": [7, 8]}}
                    ],
                }
                for check, impact in detectors
            ]
        },
    }


def test_findings_are_sorted_and_thresholded():
    findings = audit.parse_findings(
        _report(("timestamp", "Low"), ("reentrancy-eth", "High"), ("divide-before-multiply", "Medium"))
    )
    assert [f.impact for f in findings] == ["High", "Medium", "Low"]
    assert findings[0].location == "contracts/x/X.sol:7"
    assert [f.check for f in audit.failing(findings, "medium")] == [
        "reentrancy-eth",
        "divide-before-multiply",
    ]
    assert [f.check for f in audit.failing(findings, "high")] == ["reentrancy-eth"]
    assert audit.failing(findings, "none") == []
    assert (
        audit.failing(audit.parse_findings(_report(("naming-convention", "Informational"))), "medium") == []
    )


def test_failed_slither_run_is_an_error_not_a_pass():
    try:
        audit.parse_findings({"success": False, "error": "compilation failed", "results": {}})
    except RuntimeError as exc:
        assert "compilation failed" in str(exc)
    else:
        raise AssertionError("a failed slither run must not read as zero findings")


def test_inline_suppressions_need_a_reason(tmp_path):
    (tmp_path / "contracts" / "x").mkdir(parents=True)
    (tmp_path / "contracts" / "test").mkdir()
    (tmp_path / "contracts" / "x" / "X.sol").write_text(
        "contract X {\n"
        "  // slither-disable-next-line timestamp -- deadlines are hours long\n"
        "  function a() external {}\n"
        "  // slither-disable-next-line timestamp\n"
        "  function b() external {}\n"
        "  // slither-disable-start reentrancy-events\n"
        "  // slither-disable-end reentrancy-events\n"
        "}\n"
    )
    (tmp_path / "contracts" / "test" / "M.sol").write_text("// slither-disable-next-line all\n")
    assert audit.unexplained_suppressions(tmp_path) == [
        "contracts/x/X.sol:4: slither suppression without detector name and reason",
        "contracts/x/X.sol:6: slither suppression without detector name and reason",
    ]


def test_project_suppressions_all_have_reasons():
    assert audit.unexplained_suppressions(ROOT) == []


def test_make_test_runs_the_audit():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "$(MAKE)" in recipe and "audit" in recipe
    assert "tools.audit" in makefile.split("\naudit:", 1)[1].split("\n\n", 1)[0]
    assert shutil.which("node") is not None

"""The wheel as a user gets it: built from this checkout, installed into a fresh venv outside it, running
the README trade on an anvil found on PATH.

The fresh venv gets the wheel itself with ``pip install --no-deps``; its third-party dependencies (web3,
eth-tester, ...) are borrowed from the dev venv through a ``.pth`` path entry, so the test needs no
download beyond the build backend and takes about a minute, not the minutes a full resolve would. The
dev venv's editable install of agentmarket is not reachable from there (a path entry does not run the
editable finder's own ``.pth``), and the test checks that ``agentmarket`` is imported from the fresh venv.
Part of `make test` (about a minute on a quiet machine: wheel build + a fresh venv + anvil).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from agentmarket import __version__
from agentmarket.chain import anvil_binary

pytestmark = [pytest.mark.anvil]

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, agentmarket
from agentmarket.chain import anvil_binary
from agentmarket.gaslimits import GasTable, find_snapshot
from agentmarket.deploy import load_artifact
print(json.dumps({
    "package": agentmarket.__file__,
    "anvil": str(anvil_binary()),
    "snapshot": str(find_snapshot()),
    "accept_gas": GasTable().figure("escrow.accept"),
    "escrow_bytecode": len(load_artifact("AgentEscrow")["deployedBytecode"]),
}))
"""


def _readme_trade() -> str:
    """The README's first example, pointed at ``anvil`` instead of the embedded chain."""
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    code = block.group(1)
    assert "Market.connect()" in code
    return code.replace("Market.connect()", 'Market.connect("anvil")', 1)


def test_installed_wheel_runs_the_readme_trade_outside_the_checkout(tmp_path: Path) -> None:
    source, dist, home, work, bindir = (tmp_path / d for d in ("src", "dist", "venv", "work", "bin"))
    work.mkdir()
    bindir.mkdir()
    # build from a copy: setuptools writes build/ and *.egg-info into the tree it builds
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,  # agentmarket/gas-snapshot.json is a link to the committed snapshot
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "node_modules", "build", "dist", "*.egg-info", ".*cache", "__pycache__", "tests"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        timeout=600,
    )
    (wheel,) = dist.glob("agentmarket-*.whl")
    venv.EnvBuilder(with_pip=True).create(home)
    python = home / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300
    )
    # anvil on PATH: the only anvil reachable (no node_modules above the work directory or the venv)
    (bindir / "anvil").symlink_to(anvil_binary())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMARKET_")}
    env["PATH"] = f"{bindir}{os.pathsep}{home / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*argv: str) -> str:
        result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return result.stdout

    probe = json.loads(run(str(python), "-c", PROBE))
    assert Path(probe["package"]).is_relative_to(home)  # the wheel, not the checkout
    assert probe["anvil"] == str(bindir / "anvil")
    assert Path(probe["snapshot"]).is_relative_to(home)  # the gas snapshot is package data
    assert probe["accept_gas"] == json.loads((ROOT / "gas-snapshot.json").read_text())["escrow.accept"]
    assert probe["escrow_bytecode"] > 2
    assert run(str(home / "bin" / "agentmarket"), "--version").strip() == f"agentmarket {__version__}"

    out = run(str(python), "-c", _readme_trade())
    assert out.startswith("ACCEPTED "), out

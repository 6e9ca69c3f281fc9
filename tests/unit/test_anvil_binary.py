"""Where agentmarket finds anvil: $AGENTMARKET_ANVIL, then PATH, then the npm package ``@foundry-rs/anvil``
(the wrapper npm installs: its platform package hoisted or nested, or its postinstall download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmarket.chain import _npm_anvil_binaries, anvil_binary
from agentmarket.errors import ChainUnavailable


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no anvil anywhere: empty PATH, no override, no node_modules above."""
    monkeypatch.delenv("AGENTMARKET_ANVIL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("agentmarket.chain.__file__", str(tmp_path / "site" / "agentmarket" / "chain.py"))
    return tmp_path


def test_path_comes_before_node_modules(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    npm = _executable(_npm_anvil_binaries(bare / "node_modules")[0])
    assert anvil_binary() == npm
    on_path = _executable(bare / "bin" / "anvil")
    monkeypatch.setenv("PATH", str(bare / "bin"))
    assert anvil_binary() == on_path
    monkeypatch.setenv("AGENTMARKET_ANVIL", "/opt/anvil")
    assert anvil_binary() == Path("/opt/anvil")


@pytest.mark.parametrize("layout", [0, 1, 2], ids=["hoisted", "nested", "postinstall-download"])
def test_every_layout_of_the_npm_wrapper(bare: Path, layout: int) -> None:
    binary = _executable(_npm_anvil_binaries(bare / "node_modules")[layout])
    assert anvil_binary() == binary


def test_the_npm_wrapper_script_on_path_resolves_to_the_binary(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``node_modules/.bin/anvil`` is a Node script spawning the binary; anvil must be our own child."""
    modules = bare / "project" / "node_modules"
    script = _executable(modules / "@foundry-rs" / "anvil" / "bin.mjs")
    (modules / ".bin").mkdir()
    (modules / ".bin" / "anvil").symlink_to(script)
    binary = _executable(_npm_anvil_binaries(modules)[0])
    monkeypatch.setenv("PATH", str(modules / ".bin"))
    assert anvil_binary() == binary


def test_missing_everywhere_is_a_typed_error(bare: Path) -> None:
    with pytest.raises(ChainUnavailable, match="@foundry-rs/anvil"):
        anvil_binary()

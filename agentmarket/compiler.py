"""Compile the Solidity sources under ``contracts/`` into the artifacts shipped in the package.

Two builds: the package build (every source except ``contracts/test/``) is what ships in
``agentmarket/artifacts/`` and feeds the production revert table; the test build (mocks and attackers in
``contracts/test/``, compiled with the sources they import) goes to ``tests/artifacts/`` in a checkout and
never into the package.

One compiler version is pinned (:data:`SOLC_VERSION`). A native ``solc`` of that version is used when
present (an explicit path, ``$AGENTMARKET_SOLC``, or a py-solc-x installed binary); otherwise solc-js
from ``node_modules`` through ``solc_front.js``, a solc-compatible front py-solc-x can drive. Both
produce identical bytecode. Results are cached by a hash of sources, settings and compiler version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.install import get_executable

from .errors import CompilerError, CompilerUnavailable

SOLC_VERSION = "0.8.30"
PACKAGE_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = PACKAGE_DIR / "artifacts"
#: Unit-name prefix of the test build's own sources (mocks, attackers); never shipped.
TEST_SOURCES = "contracts/test/"
FRONT_SCRIPT = PACKAGE_DIR / "solc_front.js"

SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 10_000},
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"]}
    },
}


def project_root(start: Path | None = None, *, explicit: bool = False) -> Path:
    """The source tree: ``start`` itself when it holds ``contracts/``, else the nearest ancestor holding
    ``contracts/`` and ``package.json``; with ``explicit``, ``start`` must hold ``contracts/``."""
    if start is not None and (start / "contracts").is_dir():
        return start.resolve()  # a project named outright (a user's own: no package.json needed)
    if explicit and start is not None:
        raise CompilerUnavailable(
            f"no contracts/ directory in {start}", fix="pass the directory that holds contracts/"
        )
    here = (start or Path.cwd()).resolve()
    for candidate in [here, *here.parents, PACKAGE_DIR.parent]:
        if (candidate / "contracts").is_dir() and (candidate / "package.json").is_file():
            return candidate
    raise CompilerUnavailable(
        "no contracts/ source tree found",
        fix="run from an agentmarket checkout (contracts/ and package.json)",
    )


@dataclass(frozen=True)
class Compiler:
    """How to invoke solc: a native binary or node with the solc-js front."""

    kind: str  # "native" or "solc-js"
    binary: Path
    node_modules: Path | None = None

    @property
    def description(self) -> str:
        return f"{self.kind} solc {SOLC_VERSION} ({self.binary})"


def find_compiler(root: Path, solc_path: str | os.PathLike[str] | None = None) -> Compiler:
    """Pick the compiler: explicit path, ``$AGENTMARKET_SOLC``, py-solc-x install, then solc-js."""
    explicit = solc_path or os.environ.get("AGENTMARKET_SOLC")
    if explicit:
        return Compiler("native", Path(explicit))
    try:
        for version in solcx.get_installed_solc_versions():
            if str(version) == SOLC_VERSION:
                return Compiler("native", Path(get_executable(version)))
    except Exception:
        pass
    node_modules = _node_modules(root)
    if shutil.which("node") is None:
        raise CompilerUnavailable("node is not on PATH", fix="install Node >= 18, or set AGENTMARKET_SOLC")
    package = node_modules / "solc" / "package.json"
    if not package.is_file():
        raise CompilerUnavailable(f"solc-js missing from {node_modules}", fix="run `npm ci` (or `make deps`)")
    installed = json.loads(package.read_text())["version"]
    if installed != SOLC_VERSION:
        raise CompilerUnavailable(
            f"node_modules has solc {installed}, pinned is {SOLC_VERSION}", fix="run `npm ci`"
        )
    return Compiler("solc-js", FRONT_SCRIPT, node_modules)


def _node_modules(root: Path) -> Path:
    """The project's own node_modules, else the nearest one above it that has solc-js (npm's lookup)."""
    return next(
        (d / "node_modules" for d in [root, *root.parents] if (d / "node_modules" / "solc").is_dir()),
        root / "node_modules",
    )


def source_files(root: Path, *, test: bool = False) -> dict[str, str]:
    """The ``.sol`` files of a build keyed by unit name (``contracts/...``): the package build excludes
    ``contracts/test/``; the test build (``test=True``) is every file (mocks import production sources)."""
    files = sorted((root / "contracts").rglob("*.sol"))
    units = {f.relative_to(root).as_posix(): f for f in files}
    return {u: f.read_text() for u, f in units.items() if test or not u.startswith(TEST_SOURCES)}


def has_test_sources(root: Path) -> bool:
    """Whether ``root`` has a test build (a ``contracts/test/`` folder: a checkout, not a user's tree)."""
    return (root / TEST_SOURCES).is_dir()


def test_artifacts_dir(root: Path) -> Path:
    """Where the test build's artifacts live in a checkout (outside the package)."""
    return root / "tests" / "artifacts"


def _openzeppelin_version(root: Path, sources: dict[str, str] | None = None) -> str:
    package = _node_modules(root) / "@openzeppelin" / "contracts" / "package.json"
    if (
        not package.is_file()
        and sources is not None
        and not any("@openzeppelin/" in s for s in sources.values())
    ):
        return "unused"  # a user's project that imports no OpenZeppelin needs none installed
    if not package.is_file():
        raise CompilerUnavailable("@openzeppelin/contracts missing from node_modules", fix="run `npm ci`")
    return str(json.loads(package.read_text())["version"])


def source_hash(sources: dict[str, str], oz_version: str) -> str:
    """Hash of sources, settings, compiler and OpenZeppelin versions: the cache and artifact key."""
    blob = json.dumps(
        {"sources": sources, "settings": SETTINGS, "solc": SOLC_VERSION, "oz": oz_version}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _run_solc(compiler: Compiler, root: Path, sources: dict[str, str]) -> dict[str, Any]:
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SETTINGS,
    }
    previous = os.environ.get("AGENTMARKET_NODE_MODULES")
    if compiler.node_modules is not None:
        os.environ["AGENTMARKET_NODE_MODULES"] = str(compiler.node_modules)
    cwd = os.getcwd()
    try:
        os.chdir(root)  # unit names and remappings are relative to the project root
        return solcx.compile_standard(
            standard_input, base_path=str(root), allow_paths=[str(root)], solc_binary=compiler.binary
        )
    except SolcError as exc:
        raise CompilerError(_solc_messages(exc, sources)) from None
    except (FileNotFoundError, PermissionError) as exc:
        raise CompilerUnavailable(
            f"cannot run {compiler.binary}: {exc}", fix="check AGENTMARKET_SOLC"
        ) from None
    finally:
        os.chdir(cwd)
        if compiler.node_modules is not None:
            if previous is None:
                os.environ.pop("AGENTMARKET_NODE_MODULES", None)
            else:
                os.environ["AGENTMARKET_NODE_MODULES"] = previous


def _solc_messages(exc: SolcError, sources: dict[str, str]) -> list[str]:
    """solc's errors as ``file:line:col: Type: message`` lines."""
    messages = []
    for error in getattr(exc, "error_dict", None) or []:
        if error.get("severity") != "error":
            continue
        where = ""
        location = error.get("sourceLocation")
        if location and location.get("file") in sources and location.get("start", -1) >= 0:
            text = sources[location["file"]][: location["start"]]
            line = text.count("\n") + 1
            column = location["start"] - (text.rfind("\n") + 1) + 1
            where = f"{location['file']}:{line}:{column}: "
        elif location:
            where = f"{location.get('file')}: "
        messages.append(f"{where}{error.get('type', 'Error')}: {error.get('message', '').strip()}")
    return messages or [str(getattr(exc, "message", exc)).strip().splitlines()[0]]


def compile_sources(
    root: Path | None = None,
    *,
    solc_path: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    test: bool = False,
) -> dict[str, dict[str, Any]]:
    """Compile ``contracts/`` and return ``{ContractName: artifact}`` (abi, bytecode, ...): the package
    build, or with ``test=True`` the contracts of ``contracts/test/`` only (compiled with what they import).

    Raises :class:`CompilerError` with solc's ``file:line`` messages when the sources do not compile.
    """
    root = project_root(root)
    sources = source_files(root, test=test)
    if not sources:
        raise CompilerError(["no .sol files under contracts/"])
    digest = source_hash(sources, _openzeppelin_version(root, sources))
    cache_file = root / ".cache" / "solc" / f"{digest}.json"
    if use_cache and cache_file.is_file():
        return dict(json.loads(cache_file.read_text()))
    output = _run_solc(find_compiler(root, solc_path), root, sources)
    artifacts = _artifacts_from_output(output, sources, TEST_SOURCES if test else "contracts/")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(cache_file, json.dumps(artifacts, sort_keys=True))
    return artifacts


def _artifacts_from_output(
    output: dict[str, Any], sources: dict[str, str], prefix: str
) -> dict[str, dict[str, Any]]:
    # Each artifact records the hash of its own source unit, so editing one file rewrites only the
    # artifacts whose bytecode (its metadata hash covers every imported file) or source changed.
    artifacts: dict[str, dict[str, Any]] = {}
    for unit, contracts in sorted(output.get("contracts", {}).items()):
        if not unit.startswith(prefix):
            continue  # OpenZeppelin sources (their ABIs are folded into ours), or the other build's
        for name, data in sorted(contracts.items()):
            if name in artifacts:
                raise CompilerError([f"{unit}: contract name {name} is defined twice; names must be unique"])
            artifacts[name] = {
                "contractName": name,
                "sourceName": unit,
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "methodIdentifiers": data["evm"].get("methodIdentifiers", {}),
                "compiler": {"version": SOLC_VERSION, "settings": SETTINGS},
                "sourceHash": hashlib.sha256(sources[unit].encode()).hexdigest(),
            }
    return artifacts


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def render(artifact: dict[str, Any]) -> str:
    """The exact text an artifact file holds (stable key order, trailing newline)."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def _is_artifact(path: Path) -> bool:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "contractName" in document and "deployedBytecode" in document


def write_artifacts(artifacts: dict[str, dict[str, Any]], directory: Path = ARTIFACTS_DIR) -> list[Path]:
    """Replace the artifact files in ``directory`` with ``artifacts``; stale ones are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in artifacts.items():
        target = directory / f"{name}.json"
        _atomic_write(target, render(artifact))
        written.append(target)
    for stale in set(directory.glob("*.json")) - set(written):
        if _is_artifact(stale):  # never another JSON file that happens to share the directory
            stale.unlink()
    return written


def check_artifacts(
    root: Path | None = None, directory: Path | None = None, *, test: bool = False
) -> list[str]:
    """Recompile from scratch in a temporary copy and list every difference from the artifacts in
    ``directory`` (default: the package's, or with ``test=True`` the checkout's ``tests/artifacts/``)."""
    root = project_root(root)
    if directory is None:
        directory = test_artifacts_dir(root) if test else ARTIFACTS_DIR
    with tempfile.TemporaryDirectory(prefix="agentmarket-check-") as tmp:
        copy = Path(tmp)
        shutil.copytree(root / "contracts", copy / "contracts")
        if (root / "package.json").is_file():
            shutil.copy(root / "package.json", copy / "package.json")
        modules = _node_modules(root)
        if modules.is_dir():
            (copy / "node_modules").symlink_to(modules)
        fresh = compile_sources(copy, use_cache=False, test=test)
    shipped = {p.stem: p.read_text() for p in directory.glob("*.json")}
    problems = [f"{name}: missing from {directory}" for name in sorted(set(fresh) - set(shipped))]
    problems += [f"{name}: no longer produced by the sources" for name in sorted(set(shipped) - set(fresh))]
    problems += [
        f"{name}: differs from a fresh compile"
        for name in sorted(set(fresh) & set(shipped))
        if render(fresh[name]) != shipped[name]
    ]
    return problems


def load_artifact(name: str, directory: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """Read one shipped artifact by contract name."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise CompilerError([f"no artifact for {name} in {directory}; run `agentmarket compile`"])
    return dict(json.loads(path.read_text()))

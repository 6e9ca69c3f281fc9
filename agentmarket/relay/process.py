"""Run ``agentmarket relay`` as a separate OS process (tests, the bench, the demo) and wait until it
answers; stop it gently or with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ..chain import free_port
from ..errors import ChainUnavailable


class RelayProcess:
    """``agentmarket relay --db DB --chain URL --offerbook A --registry R --port P ...`` in a child process."""

    def __init__(
        self,
        db: str,
        chain_url: str,
        offerbook: str,
        registry: str | None = None,
        *,
        port: int | None = None,
        extra: Sequence[str] = (),
        log: Path | None = None,
    ):
        self.db, self.chain_url, self.offerbook, self.registry = db, chain_url, offerbook, registry
        self.port = port or free_port()
        self.extra = list(extra)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> RelayProcess:
        cmd = [
            sys.executable, "-m", "agentmarket", "relay", "--db", self.db, "--chain", self.chain_url,
            "--offerbook", self.offerbook, "--port", str(self.port), "--host", "127.0.0.1", *self.extra,
        ]  # fmt: skip
        if self.registry:
            cmd += ["--registry", self.registry]
        if self.log is None:
            self.log = Path(tempfile.mkstemp(prefix="agentmarket-relay-", suffix=".log")[1])
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log.read_text(errors="replace")
                raise ChainUnavailable(f"relay exited with {self.proc.returncode}: {err.strip()[-600:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainUnavailable(f"relay did not answer on {self.url} within {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash or power cut looks like to the database)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

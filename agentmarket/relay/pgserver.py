"""A throwaway PostgreSQL server from the installed binaries (initdb + pg_ctl in a temporary directory, on
a free loopback port), for tests, the bench and demos. Debian installs the binaries under
``/usr/lib/postgresql/<version>/bin`` (not on PATH): both places are searched.

PostgreSQL refuses to run as root; under root the server runs as the ``postgres`` system user (created by
the Debian package) or ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..chain import free_port
from ..errors import ConfigError


def pg_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    env = os.environ.get("AGENTMARKET_PG_BINDIR")
    candidates = [env] if env else []
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


class PostgresServer:
    """``with PostgresServer() as pg: pg.url`` -- a fresh cluster, stopped and deleted on exit."""

    def __init__(self, bindir: Path | None = None):
        found = bindir or pg_bindir()
        if found is None:
            raise ConfigError("PostgreSQL binaries not found (fix: apt-get install -y postgresql)")
        self.bindir = found
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="agentmarket-pg-"))
        self.data = self.dir / "data"
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self._user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)  # type: ignore[union-attr]
            os.chmod(self.dir, 0o700)
        self.started = False
        self._db_count = 0

    def _run(self, *args: str) -> None:
        user = self._user

        def demote() -> None:
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            preexec_fn=demote,
            capture_output=True,
            text=True,
            cwd=self.dir,
            timeout=120,
        )
        if result.returncode != 0:
            raise ConfigError(f"{args[0]} failed: {(result.stderr or result.stdout).strip()[-400:]}")

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.dir}' "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        self.started = True
        return self

    @property
    def url(self) -> str:
        """URL of the default ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        self._db_count += 1
        name = name or f"relay_{os.getpid()}_{self._db_count}_{int(time.time() * 1000) % 10**8}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(ConfigError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

"""A throwaway PostgreSQL cluster for the tests: started, used and removed by the session.

The cluster lives in a fresh temporary directory (data, unix socket and log), listens on
127.0.0.1 on a free port with `trust` authentication, and is stopped and deleted at the end.
No test touches a cluster it did not start. initdb refuses to run as root, so as root every
server command runs as the `postgres` user (`runuser`), which owns the directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def pg_bin(name: str) -> str:
    """The path of a PostgreSQL server program: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> tuple[int, ...]:
        number = Path(path).parts[-3]  # /usr/lib/postgresql/<version>/bin/<name>
        return tuple(int(p) for p in number.split(".") if p.isdigit())

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install PostgreSQL (`make test` does it on "
            "Debian: apt-get install postgresql)"
        )
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL server in its own temporary directory. Construction does no I/O."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.port = 0
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    @property
    def data(self) -> Path:
        """The data directory."""
        assert self.root is not None
        return self.root / "data"

    def start(self) -> None:
        """initdb and start the server; raises with its log when it does not come up."""
        self.root = Path(tempfile.mkdtemp(prefix="cb-pg-"))
        (self.root / "sock").mkdir()
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.root, self.root / "sock"):
                os.chown(path, user.pw_uid, user.pw_gid)
        init = self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        for _ in range(3):  # a free port may be taken between the check and the bind
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1 "
                "-c fsync=on -c max_connections=100"
            )
            started = self._run(
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            )
            if started.returncode == 0:
                return
            time.sleep(0.2)
        log = (self.root / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{log}")

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for a database of this cluster (as the superuser, over TCP)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement on the `postgres` database (e.g. CREATE DATABASE)."""

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        self.run_async(run())

    @staticmethod
    def run_async(coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to its end from synchronous fixture code, in a thread of its own so
        that it works while the test's event loop is running."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result(timeout=120)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

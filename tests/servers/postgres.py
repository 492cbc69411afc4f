"""A throw-away PostgreSQL server for the test session (initdb + pg_ctl on loopback).

Why this module exists: the archive must behave the same on SQLite and
PostgreSQL, and the only honest check is a real server. This starts Debian's
PostgreSQL binaries in a temporary directory on a free 127.0.0.1 port, with
durability switched off (fsync, synchronous_commit) because test data is
disposable, and hands out one fresh database per test.

PostgreSQL refuses to run as root, so when the tests run as root (CI, the
development VMs) initdb and pg_ctl run as the ``postgres`` user through
``runuser``, in a directory that user owns (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

DEBIAN_PACKAGE = "postgresql"
_START_TIMEOUT = 60.0


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are not installed (or cannot be run) on this machine."""


def find_bindir() -> Path:
    """The directory with ``initdb`` and ``pg_ctl``.

    Tries ``pg_config --bindir`` (Debian's ``pg_config`` may come from libpq-dev
    without a server, so the result is checked), then the newest
    ``/usr/lib/postgresql/*/bin``.

    :raises PostgresUnavailable: when no server binaries are found.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            candidates.append(Path(out))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)][
        ::-1
    ]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install the Debian package "
        f"`{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE})."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; :meth:`stop` removes it all."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="syncer-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "Running as root, but there is no `postgres` user to run PostgreSQL as "
                    f"(the Debian package `{DEBIAN_PACKAGE}` creates it)."
                ) from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*self._as_user, *args]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log}"
            )
        return result

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=100"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-t",
                    str(int(_START_TIMEOUT)),
                    "-w",
                    "start",
                )
            except RuntimeError as exc:
                last_error = exc
                continue
            self._wait_ready()
            return
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not accept connections on 127.0.0.1:{self.port}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        try:
            if self.datadir.exists() and self.port:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop"
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """Create a uniquely named empty database; return its name."""
        name = f"t_{uuid.uuid4().hex}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        # WITH (FORCE) (PostgreSQL 13+) ends sessions a failed test left open.
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str) -> None:
        """Run one statement in the maintenance database, outside a transaction."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

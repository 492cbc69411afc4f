"""Run a test server's master process as a child we own, and stop it with its children.

Cyrus's ``master`` and Courier's ``couriertcpd`` are started in their own session (so
the whole process group can be signalled) with output into a log file (a daemon that
inherits a pipe keeps a reader waiting for EOF forever). A watchdog shell whose stdin
is a pipe from this process SIGTERMs the group when this process dies without
stopping the server, so no server outlives the test run.

Public API: :class:`Daemon`, :func:`free_ports`, :func:`wait_for_greeting`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.servers.imap_helpers import ServerError


def free_ports(count: int) -> list[int]:
    """*count* distinct free loopback ports (all sockets stay open until each is picked)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


#: SIGTERM the server's process group when this process's pipe closes.
_WATCHDOG = 'read _eof; kill -TERM "-$1"'
#: The same, then SIGKILL every process in the server's private mount namespace: Courier's
#: couriertcpd and gam_server start sessions of their own, out of the group's reach.
_NAMESPACE_WATCHDOG = """read _eof
ns=$(readlink "/proc/$1/ns/mnt")
kill -TERM "-$1"
if [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; then
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill -KILL "${p#/proc/}"
  done
fi
"""


class Daemon:
    """One server process group with its watchdog; :meth:`stop` is safe to call twice.

    With *namespace*, the watchdog also kills every process in the server's mount
    namespace (made by ``unshare -m``) when this process dies without stopping it.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        log: Path,
        env: Mapping[str, str],
        cwd: Path,
        *,
        namespace: bool = False,
    ) -> None:
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        self._watchdog: subprocess.Popen[bytes] | None = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                _NAMESPACE_WATCHDOG if namespace else _WATCHDOG,
                "server-watchdog",
                str(self.proc.pid),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        watchdog.kill()
        watchdog.wait()
        if watchdog.stdin is not None:
            watchdog.stdin.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 5
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            while time.monotonic() < deadline:
                time.sleep(0.01)
                os.killpg(self.proc.pid, 0)  # ProcessLookupError once the group is gone


def wait_for_greeting(
    daemon: Daemon, port: int, timeout: float, describe: Callable[[], str]
) -> bytes:
    """Wait until *port* answers with an IMAP ``* OK`` greeting; return it.

    :raises ServerError: when the process exits or the deadline passes; *describe* gives the
        log tails for the message.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not daemon.running():
            raise ServerError(f"exited with status {daemon.proc.returncode}\n{describe()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                greeting = sock.makefile("rb").readline()
        except OSError:
            greeting = b""
        if greeting.startswith(b"* OK"):
            return greeting
        if time.monotonic() > deadline:
            raise ServerError(f"no greeting on port {port} ({greeting!r})\n{describe()}")
        time.sleep(0.05)

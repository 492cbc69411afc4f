"""Helpers for the `syncer run` tests: a configuration writer and a daemon subprocess
whose JSON log lines can be waited on. Every process started here is killed at teardown
(the ``daemons`` fixture), whatever the test did.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from tests.servers.dovecot import DovecotServer, MailUser

T = TypeVar("T")


def message(n: int, size: int = 200, tag: str = "d") -> bytes:
    head = f"From: a{n}@example.com\r\nMessage-ID: <{tag}{n}@example.com>\r\nSubject: n{n}\r\n\r\n"
    return head.encode() + (b"0123456789abcdef" * (size // 16 + 1))[:size] + b"\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def account_toml(server: DovecotServer, user: MailUser, name: str, **extra: Any) -> str:
    fields = {
        "name": name,
        "host": server.host,
        "port": server.ports.imaps,
        "security": "tls",
        "ca_file": str(server.tls.ca),
        "username": user.name,
        "password_env": f"PW_{name.upper()}",
        # These tests count scheduled runs; push mode (on by default) is tested in
        # test_daemon_push.py, which passes push=None for the default.
        "push": False,
        **extra,
    }
    return "[[accounts]]\n" + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in fields.items() if v is not None
    )


def write_config(
    path: Path,
    accounts: Sequence[str],
    *,
    url: str = "sqlite:///archive.db",
    scheduler: Mapping[str, Any] | None = None,
    metrics: str | None = None,
) -> Path:
    text = f"[archive]\nurl = {json.dumps(url)}\n\n"
    if scheduler:
        text += "[scheduler]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in scheduler.items())
    if metrics:
        text += f"\n[metrics]\nlisten = {json.dumps(metrics)}\n"
    path.write_text(text + "\n" + "\n".join(accounts))
    return path


def wait_until(
    what: str, check: Callable[[], T | Literal[False] | None], timeout: float, every: float = 0.1
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``.

    ``check`` may answer ``None`` or ``False`` for "not yet"; neither is ever returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Daemon:
    """`syncer --config CONFIG run` in a subprocess; its stderr (JSON lines) goes to a file."""

    def __init__(self, config: Path, env: Mapping[str, str], *, worker: str | None = None) -> None:
        self.config, self.worker = config, worker
        self.env = {**os.environ, **env}
        if worker:
            self.env["SYNCER_WORKER"] = worker
        self.log_path = config.with_name(f"daemon-{worker or 'main'}-{time.monotonic_ns()}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Daemon:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncer", "--config", str(self.config), "run", *args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_event(self, name: str, timeout: float, count: int = 1) -> list[dict[str, Any]]:
        def seen() -> list[dict[str, Any]]:
            assert self.alive() or self.events(name), f"daemon exited:\n{self.log_tail()}"
            events = self.events(name)
            return events if len(events) >= count else []

        return wait_until(f"{count} x {name} in the daemon's log", seen, timeout)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Append every Daemon a test starts; all are killed at teardown."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def syncer_cli(
    config: Path, env: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncer", "--config", str(config), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

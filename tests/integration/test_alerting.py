"""Alerting that catches a silently stopped archive: an account whose server went down
turns /healthz to 503 after stale_after, `status --check` to 2 (critical), leaves the old
last-success time in the metrics file, and pings the monitor's `/fail` URL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration._daemon import (
    Daemon,
    account_toml,
    daemons,  # noqa: F401  (fixture)
    free_port,
    message,
    syncer_cli,
    wait_until,
)
from tests.integration.test_daemon import _get
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.integration


@pytest.fixture
def monitor() -> Iterator[tuple[str, list[str]]]:
    """A healthchecks-style endpoint on loopback: the URL and the paths it was called on."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/abc", calls
    server.shutdown()
    server.server_close()


def _last_success(metrics_file: Path) -> float:
    match = re.search(
        r'^syncer_last_success_timestamp\{account="mail"\} (\S+)$',
        metrics_file.read_text(),
        re.M,
    )
    assert match, metrics_file.read_text()
    return float(match.group(1))


def test_a_server_that_went_down_is_caught_by_every_alert(
    tmp_path: Path,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    monitor: tuple[str, list[str]],
    daemons: list[Daemon],  # noqa: F811
) -> None:
    ping_url, calls = monitor
    dovecot.append(dovecot_user.name, "INBOX", message(1))
    listen = f"127.0.0.1:{free_port()}"

    def head(stale_after: str) -> str:
        return (
            '[archive]\nurl = "sqlite:///archive.db"\n\n'
            f'[monitoring]\nstale_after = "{stale_after}"\nping_url = "{ping_url}"\n\n'
            f'[metrics]\nlisten = "{listen}"\n\n'
        )

    config = tmp_path / "syncer.toml"
    up = account_toml(dovecot, dovecot_user, "mail", every="1h", retries=0)
    config.write_text(head("10m") + up)
    env = {"PW_MAIL": dovecot_user.password}
    metrics_file = tmp_path / "syncer.prom"

    first = syncer_cli(config, env, "run", "--once", "--metrics-file", str(metrics_file))
    assert first.returncode == 0, first.stderr
    assert calls == ["/ping/abc"]
    synced_at = _last_success(metrics_file)
    assert "syncer_archive_messages 1.0" in metrics_file.read_text()
    assert "syncer_normalization_backlog" in metrics_file.read_text()
    ok = syncer_cli(config, env, "status", "--check")
    assert (ok.returncode, ok.stdout.split(" - ")[0]) == (0, "SYNCER OK"), ok.stdout

    # The server goes away (nothing listens on the account's port any more).
    down_account = up.replace(f"port = {dovecot.ports.imaps}", f"port = {free_port()}")
    config.write_text(head("10m") + down_account)
    down = syncer_cli(config, env, "run", "--once", "--metrics-file", str(metrics_file))
    assert down.returncode == 1
    assert calls[-1] == "/ping/abc/fail"
    assert _last_success(metrics_file) == synced_at, "the metric keeps the old success time"
    warning = syncer_cli(config, env, "status", "--check")
    assert warning.returncode == 1, warning.stdout  # failing, not stale yet
    assert warning.stdout.startswith("SYNCER WARNING - mail: the last sync failed")
    healthy = syncer_cli(config, env, "status", "--check", "--json")
    assert '"last_success"' in healthy.stdout

    # Time passes beyond stale_after (shortened here rather than waited for).
    config.write_text(head("2s") + down_account)
    wait_until("stale_after to pass", lambda: time.time() - synced_at > 2.5, timeout=10)
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    wait_until("the daemon's metrics endpoint", lambda: _reachable(listen), timeout=20)
    status, body = wait_until(
        "healthz to turn 503", lambda: _stale(f"http://{listen}/healthz"), timeout=20
    )
    assert status == 503 and "mail: last successful sync" in body and "stale after 2 s" in body
    critical = syncer_cli(config, env, "status", "--check")
    assert critical.returncode == 2, critical.stdout
    assert critical.stdout.startswith("SYNCER CRITICAL - mail: last successful sync")
    assert daemon.stop() == 0


def _reachable(listen: str) -> bool:
    try:
        return _get(f"http://{listen}/metrics")[0] == 200
    except OSError:
        return False


def _stale(url: str) -> tuple[int, str] | None:
    status, body = _get(url)
    return (status, body) if status == 503 and "stale" in body else None

"""`syncer run` with `[web] enabled = true` serves the web archive next to its jobs,
and `syncer serve` serves it alone; both stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.integration._daemon import Daemon, daemons, free_port, syncer_cli, wait_until

__all__ = ["daemons"]


def _get(url: str) -> tuple[int, dict[str, str], str] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except OSError:
        return None


def _config(tmp_path: Path, port: int, *, enabled: bool) -> Path:
    config = tmp_path / "syncer.toml"
    config.write_text(
        '[archive]\nurl = "sqlite:///archive.db"\n\n[web]\n'
        f'enabled = {str(enabled).lower()}\nlisten = "127.0.0.1:{port}"\n'
        'session_secret_env = "WEB_SECRET"\n'
    )
    return config


def test_syncer_run_serves_the_web_archive_when_enabled(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    port = free_port()
    config = _config(tmp_path, port, enabled=True)
    env = {"WEB_SECRET": "s3cret-key-for-sessions"}
    assert syncer_cli(config, env, "init").returncode == 0
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    status, headers, body = wait_until(
        "the web archive", lambda: _get(f"http://127.0.0.1:{port}/login"), 20
    )
    assert status == 200 and "Sign in" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert daemon.stop() == 0
    assert _get(f"http://127.0.0.1:{port}/login") is None


def test_syncer_serve_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port, enabled=False)
    env = {"WEB_SECRET": "another-secret-key"}
    assert syncer_cli(config, env, "init").returncode == 0
    log = (tmp_path / "serve.log").open("wb")
    # Output to a file, not a pipe: a server must not hold the test's pipes open.
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncer", "--config", str(config), "serve"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        status, _headers, _body = wait_until(
            "syncer serve", lambda: _get(f"http://127.0.0.1:{port}/login"), 20
        )
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()

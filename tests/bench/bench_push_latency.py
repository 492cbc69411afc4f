"""Benchmark push mode: delivery-to-commit latency of ``syncer run`` on a real Dovecot.

A daemon with a one-hour poll watches one account (NOTIFY on Dovecot 2.3, or IDLE
with ``--no-notify``, which hides NOTIFY from the capability list). Another client
APPENDs ``--messages`` messages at a steady ``--rate`` over one connection, to
INBOX and, every ``--subfolder-every``-th, to a subfolder, noting the wall time at
which each APPEND completed (the moment the message was delivered). Afterwards the
archive tells when each message was committed (``entries.first_seen_at``) and
normalized (``messages.normalized_at``); the latencies are those times minus the
delivery time, all on this machine's clock. Reported: p50, p95, p99 and max, for
"committed" and for "committed and normalized", plus the load average.

Not part of ``make test``::

    python -m tests.bench.bench_push_latency --messages 1000 --rate 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tests.servers.dovecot import FULL_CAPABILITIES, DovecotServer

USER, PASSWORD = "bench", "bench-password"
SUBFOLDER = "Lists/bench"


def _message(n: int) -> bytes:
    return (
        f"From: sender{n}@example.com\r\nTo: bench@example.com\r\n"
        f"Message-ID: <lat{n}@example.com>\r\nSubject: latency {n}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + b"A line of text for the normalizer.\r\n" * 40


def _config(base: Path, server: DovecotServer) -> Path:
    (base / "pw").write_text(PASSWORD)
    config = base / "syncer.toml"
    config.write_text(
        f'[archive]\nurl = "sqlite:///{base / "archive.db"}"\n\n'
        f'[[accounts]]\nname = "bench"\nhost = "127.0.0.1"\nport = {server.ports.imap}\n'
        f'security = "plain"\nallow_insecure = true\nusername = "{USER}"\n'
        f'password_file = "{base / "pw"}"\nevery = "1h"\n'
    )
    return config


def _syncer(config: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "syncer", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=out,
    )


def _wait_log(log: Path, event: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f'"event": "{event}"' in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise SystemExit(f"the daemon never logged {event}; see {log}")


def _deliver(server: DovecotServer, count: int, rate: float, every_sub: int) -> dict[int, float]:
    """APPEND ``count`` messages at ``rate`` per second; message -> delivery wall time."""
    delivered: dict[int, float] = {}
    client = server.imap_client(USER)
    try:
        start = time.monotonic()
        for n in range(count):
            due = start + n / rate
            with contextlib.suppress(ValueError):
                time.sleep(max(0.0, due - time.monotonic()))
            folder = SUBFOLDER if every_sub and n % every_sub == every_sub - 1 else "INBOX"
            client.append(folder, _message(n))
            delivered[n] = time.time()
    finally:
        client.logout()
    return delivered


def _archived(db: Path) -> dict[int, tuple[float, float | None]]:
    """Message -> (committed, normalized) as Unix times."""

    def unix(text: str | None) -> float | None:
        if text is None:
            return None
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT m.message_id_header, MIN(e.first_seen_at), m.normalized_at FROM entries e"
            " JOIN messages m ON m.id = e.message_pk GROUP BY m.id"
        ).fetchall()
    found: dict[int, tuple[float, float | None]] = {}
    for mid, seen, normalized in rows:
        if mid and mid.startswith("<lat"):
            committed = unix(seen)
            assert committed is not None
            found[int(mid[4 : mid.index("@")])] = (committed, unix(normalized))
    return found


def _percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(values), 3),
    }


def run(messages: int, rate: float, every_sub: int, notify: bool) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="syncer-pushlat-"))
    base.chmod(0o755)  # Dovecot's unprivileged processes must reach its directory
    caps = None if notify else " ".join(c for c in FULL_CAPABILITIES.split() if c != "NOTIFY")
    server = DovecotServer(base / "dovecot", [(USER, PASSWORD)], capabilities=caps)
    server.start()
    daemon = None
    try:
        server.create_folder(USER, SUBFOLDER)
        config = _config(base, server)
        if every_sub and not notify:
            with config.open("a") as out:
                out.write(f'idle_folders = ["{SUBFOLDER}"]\n')
        subprocess.run(
            [sys.executable, "-m", "syncer", "--config", str(config), "init"],
            check=True,
            capture_output=True,
        )
        log = base / "daemon.log"
        daemon = _syncer(config, "run", log=log)
        _wait_log(log, "push.synced", 60)  # connected, and the catch-up sync done
        load_before = os.getloadavg()
        delivered = _deliver(server, messages, rate, every_sub)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            archived = _archived(base / "archive.db")
            if len(archived) == messages and all(n is not None for _, n in archived.values()):
                break
            time.sleep(0.2)
        load_after = os.getloadavg()
        committed = [archived[n][0] - t for n, t in delivered.items() if n in archived]
        normalized = [
            (archived[n][1] or 0) - t for n, t in delivered.items() if archived.get(n, (0, None))[1]
        ]
        return {
            "mode": "notify" if notify else "idle",
            "messages": messages,
            "rate_per_s": rate,
            "archived": len(archived),
            "committed_s": _percentiles(committed),
            "committed_and_normalized_s": _percentiles(normalized),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "push_syncs": log.read_text().count('"event": "push.synced"'),
        }
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument(
        "--subfolder-every", type=int, default=5, help="every Nth message to a subfolder (0: none)"
    )
    parser.add_argument("--no-notify", action="store_true", help="hide NOTIFY: IDLE only")
    args = parser.parse_args(argv)
    result = run(args.messages, args.rate, args.subfolder_every, not args.no_notify)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time to first byte archived, and the peak memory, of a full ``syncer sync``.

docs/performance.md asks for time to first byte archived because people watching a
first sync of a big mailbox want to see progress at once. It is measured from
outside, like every other figure here: a fresh ``syncer sync`` process is
started against the benchmark server and the SQLite archive is polled (read
only, every few milliseconds; WAL lets a reader look while the sync writes)
until the first message entry is committed. The child's peak RSS comes from
``wait4`` (``ru_maxrss``). ``syncer init`` runs first and is not timed.

Run it against a fresh corpus (it starts its own Dovecot)::

    python -m tests.bench.first_byte --messages 10000 --runs 3

or against a server kept up by ``python -m tests.bench.load_corpus --serve``
with ``--port``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench.load_corpus import PASSWORD, USER, seed_corpus, server_params, start_server
from tests.bench.mbsync import ServerParams
from tests.bench.syncer_peer import PASSWORD_ENV, syncer_binary, write_syncer_config

#: How often the archive is polled for the first committed entry.
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class FirstByte:
    """One full sync: seconds to the first committed entry, to the end, and peak RSS."""

    first_entry: float | None
    wall: float
    max_rss_kb: int
    returncode: int


def _entries(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def measure(params: ServerParams, state: Path, *, batch_bytes: int | None = None) -> FirstByte:
    """A fresh full sync of *params* into *state* (emptied first), polled for its first entry."""
    shutil.rmtree(state, ignore_errors=True)
    config = write_syncer_config(state / "syncer.toml", params, state)
    if batch_bytes is not None:
        with config.open("a") as out:
            out.write(f"batch_bytes = {batch_bytes}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")} | {
        PASSWORD_ENV: params.password
    }
    binary = syncer_binary()
    subprocess.run(
        [binary, "--config", str(config), "init"], env=env, check=True, capture_output=True
    )
    db = state / "archive.db"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--config", str(config), "sync", "--no-normalize", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first: float | None = None
    while first is None:
        if _entries(db):
            first = time.perf_counter() - started
            break
        if proc.poll() is not None:
            break
        time.sleep(POLL_SECONDS)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if first is None and _entries(db):
        first = wall  # finished between two polls
    return FirstByte(first, wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tls", action="store_true", help="IMAPS instead of plain IMAP")
    parser.add_argument("--batch-bytes", type=int, help="override the account's batch_bytes")
    parser.add_argument("--port", type=int, help="use a running server (load_corpus --serve)")
    parser.add_argument("--ca", type=Path, help="its CA file, with --port and --tls")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="syncer-ttfb-", dir="/tmp"))
    base.chmod(0o755)  # Dovecot's unprivileged processes must traverse it
    server = None
    try:
        if args.port:
            params = ServerParams(
                host="localhost" if args.tls else "127.0.0.1",
                port=args.port,
                user=USER,
                password=PASSWORD,
                tls=args.tls,
                ca_file=args.ca,
            )
        else:
            server = start_server(base / "server")
            report = seed_corpus(server, USER, args.messages, seed=args.seed)
            print(f"Corpus: {report.messages} messages, {report.bytes / 1e6:.1f} MB", flush=True)
            params = server_params(server, tls=args.tls)
        results = []
        for run in range(args.runs):
            result = measure(params, base / "state", batch_bytes=args.batch_bytes)
            results.append(result)
            first = f"{result.first_entry:.3f} s" if result.first_entry is not None else "n/a"
            print(
                f"run {run + 1}: first entry {first}, whole sync {result.wall:.2f} s, "
                f"peak RSS {result.max_rss_kb / 1024:.0f} MB, exit {result.returncode}",
                flush=True,
            )
        firsts = [r.first_entry for r in results if r.first_entry is not None]
        if firsts:
            print(
                f"median: first entry {statistics.median(firsts):.3f} s, whole sync "
                f"{statistics.median(r.wall for r in results):.2f} s, peak RSS "
                f"{statistics.median(r.max_rss_kb for r in results) / 1024:.0f} MB"
            )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Whole-process times of the commands people type: ``syncer search``, ``syncer show``, ``status``.

Why this script exists: in-process the query is fast (bench_search measures
it so, which is right for the web archive), but from the shell every command
first pays the interpreter's start and its imports. The issue's bound is
≤ 0.25 s p50 per command as a whole process; ``notmuch search`` on the same
messages is printed next to it when a Maildir of them is given. It also prints
the slowest imports of each command (``python -X importtime``), which is where
start-up time goes. Not part of ``make test``::

    python -m tests.bench.bench_cli_start --messages 10000 [--runs 15] [--notmuch MAILDIR]
    python -m tests.bench.bench_cli_start --archive /path/archive.db   # an existing archive
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.syncer_peer import syncer_binary

COMMANDS = (
    ("search", "budget", "--limit", "20"),
    ("search", "from:alice invoice", "--limit", "20"),
    ("show", "1"),
    ("status",),
)


def _build(path: Path, messages: int) -> None:
    from syncer.archive.store import ArchiveStore
    from syncer.model import RemoteMessage
    from syncer.sync.normalize import normalize_pending
    from tests.corpus import generate

    with ArchiveStore.open(f"sqlite:///{path}", migrate=True) as store:
        store.ensure_account("bench", "imap")
        batch: list[RemoteMessage] = []
        for uid, message in enumerate(generate(messages, size_profile="small"), 1):
            batch.append(RemoteMessage(folder="INBOX", uid=uid, raw=message.raw))
            if len(batch) == 1000:
                store.archive_batch("bench", "INBOX", 1, batch, None)
                batch = []
        if batch:
            store.archive_batch("bench", "INBOX", 1, batch, None)
        normalize_pending(store)


def _times(argv: Sequence[str], runs: int, env: dict[str, str]) -> list[float]:
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        found.append(time.perf_counter() - started)
    return found


def _slowest_imports(argv: Sequence[str], env: dict[str, str], shown: int = 6) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "syncer", *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _label, _self, cumulative, name = line.split("|", 1)[0], *line.split("|")[1:]
            if not name.startswith("  "):  # top-level imports only (their own total)
                rows.append((int(cumulative.strip()), name.strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:shown])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--archive", type=Path, help="an existing SQLite archive")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--notmuch", type=Path, help="a Maildir notmuch indexed (notmuch new)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        archive = args.archive
        if archive is None:
            archive = Path(tmp) / "archive.db"
            started = time.perf_counter()
            _build(archive, args.messages)
            took = time.perf_counter() - started
            print(f"archive of {args.messages} messages built in {took:.0f} s")
        config = Path(tmp) / "syncer.toml"
        config.write_text(
            f'[archive]\nurl = "sqlite:///{archive}"\n\n[[accounts]]\nname = "bench"\n'
            'host = "127.0.0.1"\nport = 1\nsecurity = "plain"\nallow_insecure = true\n'
            'username = "u"\npassword_env = "BENCH_PASS"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        env["BENCH_PASS"] = "x"
        print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
        print(f"{'command':<48} {'p50':>8} {'min':>8} {'max':>8}")
        for command in COMMANDS:
            line = [syncer_binary(), "--config", str(config), *command]
            times = _times(line, args.runs, env)
            label = "syncer " + " ".join(command)
            print(
                f"{label:<48} {statistics.median(times):8.3f} {min(times):8.3f} {max(times):8.3f}"
            )
            print(f"    slowest imports: {_slowest_imports(line, env)}")
        notmuch = shutil.which("notmuch")
        if args.notmuch is not None and notmuch is not None:
            nm_config = Path(tmp) / "notmuch-config"
            nm_config.write_text(f"[database]\npath={args.notmuch}\n")
            times = _times([notmuch, f"--config={nm_config}", "search", "budget"], args.runs, env)
            label = "notmuch search budget"
            print(
                f"{label:<48} {statistics.median(times):8.3f} {min(times):8.3f} {max(times):8.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark ``syncer push`` against mbsync configured IMAP-to-IMAP, on one Dovecot.

Both peers copy the same mailbox (the deterministic corpus, :mod:`tests.corpus`)
from one Dovecot user into an empty other user on the same server:

- syncer: the source is synced into a SQLite archive first (not timed); then
  ``syncer push --from src --to dstN`` is timed as a whole process;
- mbsync: a channel between two IMAP stores (``Far`` the source user, ``Near``
  a new user; ``Patterns *``, ``Create Near``, ``Sync Pull``, ``Expunge None``,
  state files in a directory), ``mbsync -a`` timed as a whole process. mbsync
  streams FETCH into APPEND with several commands in flight on each connection.

Each run copies into fresh target users (one per peer and run), alternating which
peer goes first; the report gives medians, messages per second and the ratio
syncer/mbsync in throughput (higher is better; docs/performance.md asks for >= 0.5).
Not part of ``make test``::

    python -m tests.bench.bench_push --messages 1000 --runs 3 [--connections 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.load_corpus import USER, seed_corpus, start_server
from tests.bench.mbsync import Measurement, _quote, mbsync_binary, timed
from tests.servers.dovecot import DovecotServer


def _count(server: DovecotServer, user: str) -> int:
    with server.session(user) as client:
        total = 0
        for flags, _sep, name in client.list_folders():
            if b"\\Noselect" in flags or name.startswith(("shared", "Public")):
                continue
            total += int(client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"])
        return total


def _mbsync_config(path: Path, server: DovecotServer, source: str, target: str) -> Path:
    state = path.parent / f"{path.stem}-state"
    state.mkdir()
    text = ""
    for label, user in (("far", source), ("near", target)):
        text += (
            f"IMAPAccount {label}\nHost 127.0.0.1\nPort {server.ports.imap}\n"
            f"User {_quote(user)}\nPass {_quote(server.password(user))}\n"
            "SSLType None\nAuthMechs LOGIN\nTimeout 120\n\n"
            f"IMAPStore {label}-store\nAccount {label}\n\n"
        )
    text += (
        "Channel copy\nFar :far-store:\nNear :near-store:\nPatterns *\nCreate Near\n"
        f"Sync Pull\nExpunge None\nSyncState {state}/\n"
    )
    path.write_text(text)
    path.chmod(0o600)
    return path


def _syncer_config(path: Path, server: DovecotServer, targets: Sequence[str]) -> Path:
    accounts = ""
    for name, user in [("src", USER), *((f"dst{i}", t) for i, t in enumerate(targets))]:
        accounts += (
            f'\n[[accounts]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {server.ports.imap}\n'
            f'security = "plain"\nallow_insecure = true\nusername = "{user}"\n'
            f'password_file = "{path.parent / (user + ".pw")}"\n'
        )
        (path.parent / f"{user}.pw").write_text(server.password(user))
    path.write_text(f'[archive]\nurl = "sqlite:///{path.parent / "archive.db"}"\n{accounts}')
    return path


def _syncer(config: Path, *args: str) -> Measurement:
    return timed([sys.executable, "-m", "syncer", "--config", str(config), *args])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=2, help="syncer push --connections")
    args = parser.parse_args(argv)
    mbsync_binary()
    base = Path(tempfile.mkdtemp(prefix="bench-push-", dir="/tmp"))
    base.chmod(0o755)
    server = start_server(base / "dv")
    try:
        report = seed_corpus(server, USER, args.messages)
        work = base / "work"
        work.mkdir()
        targets = [server.add_user(f"dst{i}-syncer").name for i in range(args.runs)]
        config = _syncer_config(work / "syncer.toml", server, targets)
        for step in (("init",), ("sync", "src", "--no-normalize")):
            result = _syncer(config, *step)
            if not result.ok:
                raise SystemExit(f"syncer {' '.join(step)} failed: {result.error()}")
        samples: dict[str, list[float]] = {"syncer": [], "mbsync": []}
        for run in range(args.runs):
            order = ("syncer", "mbsync") if run % 2 == 0 else ("mbsync", "syncer")
            for peer in order:
                if peer == "syncer":
                    measured = _syncer(
                        config,
                        "push",
                        "--from",
                        "src",
                        "--to",
                        f"dst{run}",
                        "--connections",
                        str(args.connections),
                    )
                    target = targets[run]
                else:
                    target = server.add_user(f"dst{run}-mbsync").name
                    cfg = _mbsync_config(work / f"mbsync{run}.rc", server, USER, target)
                    measured = timed([mbsync_binary(), "-c", str(cfg), "-a"])
                if not measured.ok:
                    raise SystemExit(f"{peer} failed: {measured.error()}")
                copied = _count(server, target)
                note = "" if copied == report.messages else f" (copied {copied}!)"
                print(f"run {run} {peer}: {measured.wall:.2f} s{note}", flush=True)
                samples[peer].append(measured.wall)
                time.sleep(0.5)
        medians = {peer: statistics.median(times) for peer, times in samples.items()}
        rates = {peer: report.messages / medians[peer] for peer in medians}
        summary = {
            "messages": report.messages,
            "megabytes": round(report.bytes / 1e6, 1),
            "runs": args.runs,
            "median_seconds": {k: round(v, 2) for k, v in medians.items()},
            "messages_per_second": {k: round(v) for k, v in rates.items()},
            "ratio_syncer_over_mbsync": round(rates["syncer"] / rates["mbsync"], 2),
        }
        print(json.dumps(summary, indent=2))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start the benchmark Dovecot and load the deterministic corpus into one user.

Every benchmark peer must read the same mailbox from the same server, so this
is the one place that builds it: a :class:`~tests.servers.dovecot.DovecotServer`
on loopback, one login, and ``tests.corpus.generate(N)`` written straight into
its Maildir by the harness's bulk ``seed`` (APPENDing 10,000 messages would take
minutes). Seeding is timed, since it bounds how quickly a benchmark can start.

Run it alone to get a loaded server for manual experiments::

    python -m tests.bench.load_corpus --dir /tmp/bench-dv --messages 10000 --serve

It prints one JSON line (ports, CA, login, corpus totals, seed time) and with
``--serve`` keeps the server up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from tests.bench.mbsync import ServerParams
from tests.corpus import FolderProfile, SizeProfile, generate
from tests.servers.dovecot import DovecotServer

USER = "bench"
PASSWORD = "bench-password"


@dataclass
class SeedReport:
    """What went into the mailbox and how long it took."""

    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    folders: dict[str, int] = field(default_factory=dict)


def seed_corpus(
    server: DovecotServer,
    user: str,
    count: int,
    *,
    seed: int = 1,
    folders: FolderProfile = "standard",
    size_profile: SizeProfile = "realistic",
) -> SeedReport:
    """Generate *count* messages and bulk-load them into *user*'s mailbox (timed)."""
    report = SeedReport()
    per_folder: Counter[str] = Counter()

    def items() -> Iterator[tuple[str, bytes, tuple[str, ...], datetime]]:
        for message in generate(count, seed=seed, folders=folders, size_profile=size_profile):
            report.messages += 1
            report.bytes += len(message.raw)
            per_folder[message.folder] += 1
            yield message.folder, message.raw, message.flags, message.internaldate

    started = time.perf_counter()
    server.seed(user, items())
    report.seconds = time.perf_counter() - started
    report.folders = dict(per_folder.most_common())
    return report


def start_server(base_dir: Path, user: str = USER, password: str = PASSWORD) -> DovecotServer:
    """A running Dovecot in *base_dir* (under /tmp: Dovecot's users must reach it)."""
    server = DovecotServer(base_dir, [(user, password)])
    server.start()
    return server


def server_params(server: DovecotServer, user: str = USER, *, tls: bool) -> ServerParams:
    """How a peer reaches *server*: 127.0.0.1 for plain IMAP, ``localhost`` for IMAPS."""
    if tls:
        return ServerParams(
            host=server.host,
            port=server.ports.imaps,
            user=user,
            password=server.password(user),
            tls=True,
            ca_file=server.tls.ca,
        )
    return ServerParams(
        host="127.0.0.1", port=server.ports.imap, user=user, password=server.password(user)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="server directory (default: a new /tmp dir)")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folders", choices=("standard", "many"), default="standard")
    parser.add_argument("--size-profile", choices=("realistic", "small"), default="realistic")
    parser.add_argument("--serve", action="store_true", help="keep the server up until Ctrl-C")
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-dv-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # Dovecot's unprivileged processes must traverse it
    server = start_server(base)
    try:
        report = seed_corpus(
            server,
            USER,
            args.messages,
            seed=args.seed,
            folders=args.folders,
            size_profile=args.size_profile,
        )
        info = {
            "dir": str(base),
            "host": server.host,
            "ports": asdict(server.ports),
            "ca": str(server.tls.ca),
            "user": USER,
            "password": PASSWORD,
            "corpus": asdict(report),
            "seed_rate_mb_s": round(report.bytes / 1e6 / max(report.seconds, 1e-9), 1),
        }
        print(json.dumps(info, ensure_ascii=False), flush=True)
        if args.serve:
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            stop.wait()
    finally:
        server.stop()
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

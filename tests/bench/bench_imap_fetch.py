"""Benchmark: IMAPSource's lean body download against imapclient's ``fetch()``.

Why: docs/performance.md measured imapclient's FETCH parser at about 6x the cost of
the raw read for bulk bodies, which is why ``IMAPSource.fetch_messages`` reads
literals itself. This script checks that claim on this machine, on one server
and one corpus, in alternating runs (these VMs are noisy: compare medians and
ratios, never single absolute times).

It starts a private Dovecot with the test harness, seeds a deterministic
corpus (fixed seed; median about 8 KB, a few 0.5-2 MB messages, roughly the
size mix of docs/performance.md), then times, for every body in INBOX:

* ``lean``: ``IMAPSource.fetch_messages(start_uid=1)`` (plan + batches);
* ``imapclient``: the same plan and the same size-bounded batches through
  ``IMAPClient.fetch(..., [UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]])``;
* ``imaplib``: stdlib ``imaplib`` ``uid("FETCH", ...)`` on the same batches,
  the floor a Python client can reach.

Bodies are thrown away (this measures the IMAP side, not the archive). Run::

    .venv/bin/python -m tests.bench.bench_imap_fetch [--messages 3000] [--runs 3]
        [--security plain|tls] [--keep DIR]

It is a script, not a test: never part of ``make test``.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imapclient import IMAPClient

from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource
from tests.servers.dovecot import DovecotServer

BATCH_BYTES = 32 * 1024 * 1024
BATCH_COUNT = 500
USER, PASSWORD = "bench", "bench-password"

#: (share, low, high) body sizes in bytes, after the benchmark corpus in docs/performance.md.
SIZE_MIX = [
    (0.28, 1_500, 5_000),
    (0.32, 5_000, 10_000),
    (0.29, 10_000, 20_000),
    (0.02, 20_000, 100_000),
    (0.065, 100_000, 500_000),
    (0.015, 500_000, 1_000_000),
    (0.015, 1_000_000, 2_000_000),
    (0.004, 2_000_000, 3_000_000),
]
WORDS = [
    *[
        "the",
        "quarterly",
        "report",
        "meeting",
        "invoice",
        "project",
        "deadline",
        "please",
        "find",
        "attached",
    ],
    *[
        "regards",
        "thanks",
        "schedule",
        "review",
        "budget",
        "team",
        "update",
        "customer",
        "server",
        "release",
    ],
]


def corpus(count: int, seed: int = 20240309) -> Iterator[bytes]:
    """Deterministic messages: text bodies, base64 attachments above 100 KB."""
    rnd = random.Random(seed)
    shares = [s for s, _, _ in SIZE_MIX]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(count):
        _, low, high = rnd.choices(SIZE_MIX, weights=shares)[0]
        size = rnd.randint(low, high)
        date = (start + timedelta(minutes=17 * n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        head = (
            f"From: Sender {n % 97} <s{n % 97}@example.org>\r\nTo: me@example.org\r\n"
            f"Subject: {' '.join(rnd.choices(WORDS, k=6))}\r\nDate: {date}\r\n"
            f"Message-ID: <{n}.{seed}@bench.example.org>\r\nMIME-Version: 1.0\r\n"
        ).encode()
        if size > 100_000:
            blob = base64.encodebytes(rnd.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
            body = (
                b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                b"Content-Type: text/plain\r\n\r\nSee attachment.\r\n--b\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--b--\r\n"
            )
        else:
            lines = []
            length = 0
            while length < size:
                line = " ".join(rnd.choices(WORDS, k=12)) + "\r\n"
                lines.append(line)
                length += len(line)
            body = b"Content-Type: text/plain\r\n\r\n" + "".join(lines).encode()
        yield head + body


def plan(client: IMAPClient) -> list[list[int]]:
    """The batches IMAPSource would make: bounded by count and summed RFC822.SIZE."""
    sizes = client.fetch(client.search("ALL"), ["RFC822.SIZE"])
    batches: list[list[int]] = [[]]
    total = 0
    for uid in sorted(sizes):
        size = sizes[uid][b"RFC822.SIZE"]
        if batches[-1] and (len(batches[-1]) >= BATCH_COUNT or total + size > BATCH_BYTES):
            batches.append([])
            total = 0
        batches[-1].append(uid)
        total += size
    return batches


def connect(server: DovecotServer, security: str) -> IMAPClient:
    if security == "tls":
        client = IMAPClient(server.host, port=server.ports.imaps, ssl_context=server.ssl_context())
    else:
        client = IMAPClient(server.host, port=server.ports.imap, ssl=False)
    client.login(USER, PASSWORD)
    client.select_folder("INBOX", readonly=True)
    return client


def run_lean(server: DovecotServer, security: str) -> tuple[int, int]:
    port = server.ports.imaps if security == "tls" else server.ports.imap
    source = IMAPSource.open(
        IMAPSettings(
            server.host,
            port,
            security,  # type: ignore[arg-type]
            USER,
            PASSWORD,
            ca_file=str(server.tls.ca),
            account="bench",
        )
    )
    try:
        source.select("INBOX")
        count = size = 0
        for batch in source.fetch_messages(
            start_uid=1, batch_bytes=BATCH_BYTES, batch_count=BATCH_COUNT
        ):
            count += len(batch)
            size += sum(len(m.raw) for m in batch)
        return count, size
    finally:
        source.close()


def run_imapclient(server: DovecotServer, security: str) -> tuple[int, int]:
    client = connect(server, security)
    try:
        count = size = 0
        for batch in plan(client):
            answer = client.fetch(
                batch, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"]
            )
            count += len(answer)
            size += sum(len(v[b"BODY[]"]) for v in answer.values())
        return count, size
    finally:
        client.logout()


def run_imaplib(server: DovecotServer, security: str) -> tuple[int, int]:
    client = connect(server, security)  # only for the plan, then plain imaplib
    batches = plan(client)
    client.logout()
    if security == "tls":
        imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            server.host, server.ports.imaps, ssl_context=server.ssl_context()
        )
    else:
        imap = imaplib.IMAP4(server.host, server.ports.imap)
    try:
        imap.login(USER, PASSWORD)
        imap.select("INBOX", readonly=True)
        count = size = 0
        for batch in batches:
            typ, data = imap.uid(
                "FETCH",
                ",".join(map(str, batch)),
                "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            )
            assert typ == "OK"
            for part in data:
                if isinstance(part, tuple):
                    count += 1
                    size += len(part[1])
        return count, size
    finally:
        imap.logout()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--security", choices=["plain", "tls"], default="plain")
    parser.add_argument("--keep", type=Path, help="reuse/keep this server directory")
    args = parser.parse_args(argv)

    base = args.keep or Path(tempfile.mkdtemp(prefix="syncer-bench-"))
    with DovecotServer(base, [(USER, PASSWORD)]) as server:
        t0 = time.monotonic()
        if not server.uids(USER, "INBOX"):
            server.seed(USER, (("INBOX", raw, ("\\Seen",), None) for raw in corpus(args.messages)))
        seeded = time.monotonic() - t0
        sizes = sorted(len(raw) for raw in corpus(args.messages))
        total_mb = sum(sizes) / 1e6
        print(
            f"corpus: {len(sizes)} messages, {total_mb:.1f} MB, median "
            f"{statistics.median(sizes) / 1000:.1f} KB, largest {sizes[-1] / 1e6:.2f} MB, "
            f"{sum(s >= 500_000 for s in sizes)} of 0.5 MB or more (seeded in {seeded:.1f} s)"
        )
        print(f"server: Dovecot on loopback, {args.security}; {args.runs} alternating runs\n")
        paths: dict[str, Callable[[DovecotServer, str], tuple[int, int]]] = {
            "lean": run_lean,
            "imapclient": run_imapclient,
            "imaplib": run_imaplib,
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.runs):
            for name, run in paths.items():
                start = time.perf_counter()
                count, size = run(server, args.security)
                times[name].append(time.perf_counter() - start)
                if (count, size) != (len(sizes), sum(sizes)):
                    print(f"{name}: fetched {count} messages, {size} bytes", file=sys.stderr)
                    return 1
        lean = statistics.median(times["lean"])
        print(f"{'path':<12} {'median s':>9} {'runs':>24} {'msg/s':>8} {'MB/s':>7} {'x lean':>7}")
        for name, values in times.items():
            median = statistics.median(values)
            runs = " ".join(f"{v:.2f}" for v in values)
            print(
                f"{name:<12} {median:9.2f} {runs:>24} {len(sizes) / median:8.0f} "
                f"{total_mb / median:7.1f} {median / lean:7.2f}"
            )
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

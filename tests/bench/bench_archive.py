"""Micro-benchmark of the archive hot path: ``ArchiveStore.archive_batch`` on SQLite.

Why this script exists: a first sync of a big mailbox is bounded by how fast
fetched bytes are hashed, compressed and inserted. This measures that alone (no
IMAP), on a deterministic corpus shaped like the benchmark corpus's (median
about 8 KB, a tail of 100 KB-2 MB messages, about 10% with base64
attachments), in batches bounded like the IMAP source's (500 messages or
32 MB), and prints wall time, process CPU time and throughput for each
configuration. Not a test: run it by hand.

    .venv/bin/python -m tests.bench.bench_archive [--messages 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from syncer.archive.store import ArchiveStore
from syncer.model import FolderCursor, RemoteMessage

SEED = 20240517
BATCH_COUNT = 500
BATCH_BYTES = 32 * 1024 * 1024

# (share, low, high) of message sizes in bytes, after the benchmark corpus in docs/performance.md.
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

WORDS_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could people "
    "meeting invoice quarterly report attached please review thanks regards schedule project"
)


def _corpus_pools(rng: random.Random) -> tuple[bytes, bytes]:
    words = WORDS_TEXT.split()
    text = " ".join(rng.choice(words) for _ in range(900_000)).encode()
    wrapped = b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    attachment = base64.encodebytes(rng.randbytes(3_000_000)).replace(b"\n", b"\r\n")
    return wrapped, attachment


def make_corpus(count: int, seed: int = SEED) -> list[bytes]:
    """``count`` raw RFC 5322 messages, deterministic for a given seed."""
    rng = random.Random(seed)
    text, attachment = _corpus_pools(rng)
    shares = [share for share, _, _ in SIZE_MIX]
    messages = []
    for n in range(count):
        _, low, high = rng.choices(SIZE_MIX, weights=shares)[0]
        size = rng.randint(low, high)
        header = (
            f"Return-Path: <sender{n % 97}@example.org>\r\n"
            f"Received: from mx{n % 5}.example.org by mail.example.net; "
            f"Fri, 17 May 2024 09:{n % 60:02d}:00 +0000\r\n"
            f"From: Sender {n % 97} <sender{n % 97}@example.org>\r\n"
            "To: Bob <bob@example.net>\r\n"
            f"Subject: Message number {n} about the quarterly report\r\n"
            f"Date: Fri, 17 May 2024 09:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{n}.{seed}@example.org>\r\n"
            "MIME-Version: 1.0\r\n"
        ).encode()
        with_attachment = size > 20_000 or rng.random() < 0.1
        body_size = max(200, size - len(header))
        start = rng.randrange(0, len(text) - 4_000)
        if not with_attachment:
            body = text[start : start + body_size]
            raw = header + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
        else:
            text_part = text[start : start + min(2_000, body_size // 4)]
            need = body_size - len(text_part)
            chunks = []
            while need > 0:
                offset = rng.randrange(0, len(attachment) - 1)
                piece = attachment[offset : offset + need]
                chunks.append(piece)
                need -= len(piece)
            raw = (
                header
                + b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
                + b"--b1\r\nContent-Type: text/plain\r\n\r\n"
                + text_part
                + b"\r\n--b1\r\nContent-Type: application/pdf\r\n"
                + b"Content-Transfer-Encoding: base64\r\n\r\n"
                + b"".join(chunks)
                + b"\r\n--b1--\r\n"
            )
        messages.append(raw)
    return messages


def batches(raws: list[bytes]) -> Iterator[list[RemoteMessage]]:
    when = datetime(2024, 5, 17, tzinfo=UTC)
    batch: list[RemoteMessage] = []
    size = 0
    for uid, raw in enumerate(raws, start=1):
        flags = ("\\Seen",) if uid % 10 else ("\\Flagged", "\\Seen")
        batch.append(RemoteMessage("INBOX", uid, raw, flags, when, len(raw)))
        size += len(raw)
        if len(batch) >= BATCH_COUNT or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass
class Result:
    wall: float
    cpu: float


def run_once(raws: list[bytes], blob_store: str, threads: int | None, workdir: Path) -> Result:
    url = f"sqlite:///{workdir / 'archive.db'}"
    spec = blob_store if blob_store == "db" else f"fs:{workdir / 'blobs'}"
    prepared = list(batches(raws))
    with ArchiveStore.open(url, blob_store=spec, migrate=True, threads=threads) as store:
        store.ensure_account("bench", "imap")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        uidnext = 1
        for batch in prepared:
            uidnext = batch[-1].uid + 1
            store.archive_batch("bench", "INBOX", 1, batch, FolderCursor(1, uidnext))
        result = Result(time.perf_counter() - wall0, time.process_time() - cpu0)
        assert store.count_entries() == len(raws)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    raws = make_corpus(args.messages)
    total = sum(len(r) for r in raws)
    sizes = sorted(len(r) for r in raws)
    print(
        f"corpus: {len(raws)} messages, {total / 1e6:.1f} MB, "
        f"median {sizes[len(sizes) // 2] / 1e3:.1f} KB, max {sizes[-1] / 1e6:.2f} MB"
    )
    print(f"{'configuration':<26} {'wall s':>8} {'cpu s':>8} {'MB/s':>8} {'msg/s':>8}")
    configs = [("db", 1), ("db", None), ("fs", 1), ("fs", None)]
    for blob_store, threads in configs:
        results = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="syncer-bench-") as tmp:
                results.append(run_once(raws, blob_store, threads, Path(tmp)))
        wall = statistics.median(r.wall for r in results)
        cpu = statistics.median(r.cpu for r in results)
        label = f"{blob_store}, threads={'auto' if threads is None else threads}"
        print(
            f"{label:<26} {wall:>8.2f} {cpu:>8.2f} {total / 1e6 / wall:>8.1f} "
            f"{len(raws) / wall:>8.0f}"
        )


if __name__ == "__main__":
    main()

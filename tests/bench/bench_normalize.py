"""Benchmark of normalization: messages/s and MB/s on the benchmark corpus.

Why this script exists: normalization is the CPU-heavy stage after ingest (a
full MIME parse, charset decoding, HTML to text, hashing every attachment),
and it runs on every new message; docs/performance.md records what it costs
("## Normalization"). Not a test: run it by hand.

Measured, on ``tests.corpus.generate(N)`` (the same corpus as the sync
benchmarks, bytes generated before the clock starts):

* ``normalize()`` alone, in this process (the parser's own speed);
* ``normalize()`` over a process pool of ``--workers`` processes (parse only;
  includes sending the bytes to the workers and the results back);
* the whole catch-up stage (``normalize_pending``: read blobs from a SQLite
  archive, parse, write the rows), in-process and with the pool, with its CPU
  time: this process and its children (the pool's workers and their attachment
  text children), from ``getrusage``. CPU-seconds, unlike wall time, hardly
  depend on what else the machine runs.

    .venv/bin/python -m tests.bench.bench_normalize [--messages 10000] [--workers 2]
        [--stage-only]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from syncer.archive.store import ArchiveStore
from syncer.mime.normalize import normalize
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.corpus import generate

MB = 1_000_000


def _parse_chunk(raws: Sequence[bytes]) -> int:
    return sum(len(normalize(raw).text) >= 0 for raw in raws)


def _line(label: str, count: int, size: int, seconds: float) -> str:
    return (
        f"{label:<44} {count:>6} msgs {size / MB:>8.1f} MB {seconds:>7.2f} s "
        f"{count / seconds:>8.0f} msg/s {size / MB / seconds:>7.1f} MB/s"
    )


def _cpu() -> float:
    """CPU-seconds of this process and of its children waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-stage", action="store_true", help="parse only; no archive")
    parser.add_argument("--stage-only", action="store_true", help="the stage only")
    args = parser.parse_args(argv)

    corpus = [m.raw for m in generate(args.messages)]
    size = sum(map(len, corpus))
    print(f"corpus: tests.corpus.generate({args.messages}), {size / MB:.1f} MB")
    if not args.stage_only:
        _parse_only(corpus, size, args.workers)
    if not args.skip_stage:
        _stage(corpus, args.workers)


def _parse_only(corpus: list[bytes], size: int, workers: int) -> None:

    started = time.perf_counter()
    statuses: dict[str, int] = {}
    for raw in corpus:
        status = normalize(raw).status
        statuses[status] = statuses.get(status, 0) + 1
    print(_line("normalize(), 1 process", len(corpus), size, time.perf_counter() - started))
    print(f"  statuses: {statuses}")

    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunks = [corpus[i : i + 16] for i in range(0, len(corpus), 16)]
        done = sum(pool.map(_parse_chunk, chunks))
    label = f"normalize(), pool of {workers} (incl. start-up)"
    print(_line(label, done, size, time.perf_counter() - started))


def _stage(corpus: list[bytes], pool_workers: int) -> None:
    for workers in (1, pool_workers):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'archive.db'}"
            with ArchiveStore.open(url, migrate=True) as store:
                store.ensure_account("bench", "imap")
                for start in range(0, len(corpus), 500):
                    batch = [
                        RemoteMessage(folder="INBOX", uid=start + i + 1, raw=raw)
                        for i, raw in enumerate(corpus[start : start + 500])
                    ]
                    store.archive_batch("bench", "INBOX", 1, batch, None)
                cpu = _cpu()
                counts = normalize_pending(store, workers=workers)
                cpu = _cpu() - cpu
            label = f"normalize_pending (SQLite), {counts.workers} process(es)"
            print(_line(label, counts.processed, counts.bytes, counts.seconds))
            print(
                f"  {cpu:.2f} CPU-s (process tree) = {counts.processed / cpu:.0f} msg/CPU-s, "
                f"load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()

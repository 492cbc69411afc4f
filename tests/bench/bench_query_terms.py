"""Benchmark of the query language's field terms (not free text): what selecting costs.

Why this script exists: retention, holds, digests, forwards and export select
with field terms (``is:gone``, ``before:``, ``folder:``, ``from:``...) rather
than words; ``tests/bench/bench_search.py`` times the full-text queries. This
one times, on a SQLite archive of N generated messages (tests/corpus.py, small
profile, every ninth INBOX message expunged), each query of :data:`QUERIES`
through ``ArchiveStore.search(q, limit=50)`` and through the first batch of
``select_message_ids(q)``, and prints a Markdown table (median and best of 7)
for docs/performance.md. Not a test: run it by hand::

    .venv/bin/python -m tests.bench.bench_query_terms --messages 100000 --db /tmp/q100k.db
    .venv/bin/python -m tests.bench.bench_query_terms --db /tmp/q100k.db   # reuse it

Building 100,000 messages takes a few minutes (normalization on one core).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import select

from syncer.archive.models import messages
from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.corpus import generate

QUERIES = (
    "from:smith",
    "to:lena",
    "folder:INBOX",
    "account:work",
    "flag:flagged",
    "is:unread",
    "is:gone",
    "is:live",
    "has:attachment larger:10k",
    "smaller:3k",
    "before:2025-01-01",
    "on:2024-06-01",
    "after:2025-06-01 from:hoffmann",
    "thread:{thread}",
    "message-id:{message_id}",
    "sha256:{sha256}",
    "filename:.pdf",
    "invoice -folder:Sent",
    "(Rechnung OR invoice) after:2025-01-01",
    "is:signed OR is:encrypted",
)


def build(store: ArchiveStore, count: int) -> None:
    """Archive and normalize ``count`` corpus messages, expunging every ninth of INBOX."""
    store.ensure_account("work", "imap")
    pending: dict[str, list[RemoteMessage]] = {}
    next_uid: dict[str, int] = {}

    def flush(folder: str) -> None:
        batch = pending.pop(folder, [])
        if batch:
            store.archive_batch("work", folder, 1, batch, None)

    for message in generate(count, seed=3, size_profile="small"):
        uid = next_uid[message.folder] = next_uid.get(message.folder, 0) + 1
        pending.setdefault(message.folder, []).append(
            RemoteMessage(
                folder=message.folder,
                uid=uid,
                raw=message.raw,
                flags=message.flags,
                internaldate=message.internaldate,
            )
        )
        if len(pending[message.folder]) >= 500:
            flush(message.folder)
    for folder in list(pending):
        flush(folder)
    store.mark_gone("work", "INBOX", 1, range(1, next_uid.get("INBOX", 0) + 1, 9), None)
    normalize_pending(store, workers=1)


def _first_batch(store: ArchiveStore, query: str) -> list[int] | None:
    return next(iter(store.select_message_ids(query)), None)


def _ms(call: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=0, help="build an archive of N first")
    parser.add_argument("--db", type=Path, required=True, help="the SQLite archive file")
    args = parser.parse_args()
    url = f"sqlite:///{args.db}"
    with ArchiveStore.open(url, migrate=True) as store:
        if args.messages:
            started = time.perf_counter()
            build(store, args.messages)
            print(f"built {args.messages} messages in {time.perf_counter() - started:.0f} s")
        count = store.count_messages("")
        with store.engine.connect() as conn:
            sample = conn.execute(
                select(messages.c.thread_key, messages.c.message_id_header, messages.c.sha256)
                .order_by(messages.c.id)
                .limit(1)
                .offset(min(777, count - 1))
            ).one()
        values = {
            "thread": sample.thread_key,
            "message_id": sample.message_id_header,
            "sha256": sample.sha256,
        }
        print("| query | matches | search(limit=50) ms | first id batch ms |")
        print("|---|---:|---:|---:|")
        medians = []
        for template in QUERIES:
            query = template.format(**values)
            found = _ms(partial(store.search, query, limit=50))
            batch = _ms(partial(_first_batch, store, query))
            medians.append(found[0])
            shown = template.replace("{", "").replace("}", "")
            print(
                f"| `{shown}` | {store.count_messages(query)} | {found[0]:.1f} ({found[1]:.1f}) "
                f"| {batch[0]:.1f} ({batch[1]:.1f}) |"
            )
        medians.sort()
        p95 = medians[min(len(medians) - 1, round(0.95 * (len(medians) - 1)))]
        print(f"search(): p50 {statistics.median(medians):.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()

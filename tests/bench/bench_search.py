"""Benchmark of search: index build time, index size and query latency, next to notmuch.

Why this script exists: docs/performance.md sets the search target (100,000
messages, 20 fixed queries: p50 ≤ 20 ms, p95 ≤ 100 ms on SQLite) as a
comparison with notmuch on the same messages in the same run;
docs/performance.md ("## Search") records the figures. Not a test: run it by
hand (it takes a while at 100,000)::

    .venv/bin/python -m tests.bench.bench_search --messages 100000
    .venv/bin/python -m tests.bench.bench_search --messages 5000 --backends sqlite

Per backend (SQLite file; PostgreSQL from tests/servers/postgres.py):

1. archive ``tests.corpus.generate(N, size_profile=...)`` through
   ``ArchiveStore.archive_batch`` in batches of 1,000 (no IMAP; not timed as
   indexing);
2. normalize it with the process pool (``normalize_pending``; this already
   indexes each batch as it is saved, so it is reported with and without);
3. ``rebuild_index()``: the index build time on its own, from the rows;
4. index size (FTS5 tables / search_chunks with its GIN index, plus the
   extracted attachment text) as a share of the whole database;
5. the 20 queries of :data:`QUERIES` through ``ArchiveStore.search(q,
   limit=50)`` (the query language, sorted by date), each run ``--repeat``
   times after one warm-up; p50/p95 over all runs.

notmuch (Debian package ``notmuch``, installed with apt-get when missing and
running as root): the same messages written to a Maildir, ``notmuch new``
timed, and the same 20 queries (notmuch syntax) through ``notmuch search
--output=threads --limit=50`` -- a process per query, so its start-up (a few
ms) is included, as it is for anyone who uses notmuch from the shell.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import text

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.corpus import generate, write_maildir

MB = 1_000_000

#: (syncer query, notmuch query): words, prefixes, phrases, fields and CJK, all in the corpus.
QUERIES: tuple[tuple[str, str], ...] = (
    ("invoice", "invoice"),
    ("contract", "contract"),
    ("budget review", "budget and review"),
    ('"budget review"', '"budget review"'),
    ("migrat*", "migrat*"),
    ("subject:invoice", "subject:invoice"),
    ("subject:shipped", "subject:shipped"),
    ("Rechnung", "Rechnung"),
    ("Überweisung", "Überweisung"),
    ("München", "München"),
    ("회의", "회의"),
    ("메일", "메일"),
    ("계약서", "계약서"),
    ("会議", "会議"),
    ("請求書", "請求書"),
    ("deadline -meeting", "deadline and not meeting"),
    ("proposal OR approval", "proposal or approval"),
    ("from:smith", "from:smith"),
    ("signature document", "signature and document"),
    ("zzzznotfound", "zzzznotfound"),
)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _latencies(run: Callable[[str], object], queries: Sequence[str], repeat: int) -> list[float]:
    for query in queries:
        run(query)  # warm-up: caches, first-use imports
    times: list[float] = []
    for _ in range(repeat):
        for query in queries:
            started = time.perf_counter()
            run(query)
            times.append((time.perf_counter() - started) * 1000)
    return times


def _report(label: str, times: Sequence[float]) -> str:
    return (
        f"{label:<34} p50 {_percentile(times, 0.5):8.1f} ms   "
        f"p95 {_percentile(times, 0.95):8.1f} ms   max {max(times):8.1f} ms"
    )


def _database_bytes(store: ArchiveStore, url: str) -> int:
    with store.engine.connect() as conn:
        if url.startswith("sqlite"):
            return int(conn.execute(text("SELECT sum(pgsize) FROM dbstat")).scalar_one())
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def _extracted_bytes(store: ArchiveStore, url: str) -> int:
    with store.engine.connect() as conn:
        if url.startswith("sqlite"):
            found = conn.execute(
                text("SELECT sum(pgsize) FROM dbstat WHERE name LIKE '%attachment_texts%'")
            ).scalar()
        else:
            found = conn.execute(text("SELECT pg_total_relation_size('attachment_texts')")).scalar()
    return int(found or 0)


def bench_backend(name: str, url: str, corpus: Sequence[bytes], args: argparse.Namespace) -> None:
    store = ArchiveStore.open(url, migrate=True)
    try:
        store.ensure_account("bench", "imap")
        started = time.monotonic()
        for start in range(0, len(corpus), 1000):
            batch = [
                RemoteMessage(folder="INBOX", uid=start + i + 1, raw=raw, flags=("\\Seen",))
                for i, raw in enumerate(corpus[start : start + 1000])
            ]
            store.archive_batch("bench", "INBOX", 1, batch, None)
        print(f"{name}: archived {len(corpus)} messages in {time.monotonic() - started:.1f} s")
        counts = normalize_pending(store, workers=args.workers)
        print(
            f"{name}: normalized (and indexed) in {counts.seconds:.1f} s "
            f"({counts.processed / counts.seconds:.0f} msg/s, {counts.workers} processes)"
        )
        # Sizes as normalization built the index (a rebuild leaves dead rows and free pages).
        status = store.index_status()
        total = _database_bytes(store, url)
        extracted = _extracted_bytes(store, url)
        index_bytes = status.index_bytes or 0
        print(
            f"{name}: index {index_bytes / MB:.1f} MB + attachment text {extracted / MB:.1f} MB "
            f"of {total / MB:.1f} MB database ({(index_bytes + extracted) / total:.1%}); "
            f"{status.index_rows} rows for {status.indexed} messages"
        )
        rebuilt = store.rebuild_index()
        print(
            f"{name}: index rebuild {rebuilt.seconds:.1f} s "
            f"({rebuilt.indexed / rebuilt.seconds:.0f} msg/s)"
        )
        if not url.startswith("sqlite"):
            with store.engine.connect() as conn:  # as autovacuum would, before measuring queries
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        queries = [q for q, _ in QUERIES]
        hits = {q: len(store.search(q, limit=50)) for q in queries}
        print(f"{name}: hits (limit 50): " + ", ".join(f"{q!r}={n}" for q, n in hits.items()))
        times = _latencies(lambda q: store.search(q, limit=50), queries, args.repeat)
        print(_report(f"{name}: search(limit=50)", times))
        counted = _latencies(store.count_messages, queries, 1)
        print(_report(f"{name}: count_messages", counted))
    finally:
        store.close()


def _notmuch() -> str | None:
    found = shutil.which("notmuch")
    if found is None and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "notmuch"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("notmuch")
    return found


def index_notmuch(corpus_args: dict[str, object], workdir: Path) -> dict[str, str] | None:
    """Write the corpus to a Maildir in *workdir*, index it with ``notmuch new`` (timed,
    printed with the index size); the environment that points notmuch at it, or None
    when notmuch is not installed. Also used by ``bench_cli_start``."""
    binary = _notmuch()
    if binary is None:
        print("notmuch: not installed (apt-get install notmuch); skipped")
        return None
    maildir = workdir / "mail"
    write_maildir(maildir, generate(**corpus_args))  # type: ignore[arg-type]
    config = workdir / "notmuch-config"
    config.write_text(
        f"[database]\npath={maildir}\n[user]\nname=Bench\nprimary_email=bench@example.com\n"
        "[new]\ntags=inbox;\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n"
    )
    env = {**os.environ, "NOTMUCH_CONFIG": str(config)}
    started = time.monotonic()
    subprocess.run([binary, "new", "--quiet"], check=True, env=env)
    seconds = time.monotonic() - started
    size = sum(p.stat().st_size for p in (maildir / ".notmuch").rglob("*") if p.is_file())
    mail = sum(
        p.stat().st_size for p in maildir.rglob("*") if p.is_file() and ".notmuch" not in p.parts
    )
    print(
        f"notmuch: indexed in {seconds:.1f} s; index {size / MB:.1f} MB "
        f"({size / (size + mail):.1%} of index + {mail / MB:.1f} MB Maildir)"
    )
    return env


def bench_notmuch(corpus_args: dict[str, object], workdir: Path, repeat: int) -> None:
    env = index_notmuch(corpus_args, workdir)
    binary = shutil.which("notmuch")
    if env is None or binary is None:
        return

    def run(query: str) -> None:
        subprocess.run(
            [binary, "search", "--output=threads", "--limit=50", query],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )

    print(_report("notmuch: search --limit=50", _latencies(run, [n for _, n in QUERIES], repeat)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size-profile", choices=("small", "realistic"), default="small")
    parser.add_argument("--backends", default="sqlite,postgresql,notmuch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep the archives and Maildir here")
    args = parser.parse_args(argv)
    backends = set(args.backends.split(","))
    corpus_args = {"count": args.messages, "size_profile": args.size_profile}
    corpus = [m.raw for m in generate(**corpus_args)]
    print(
        f"corpus: tests.corpus.generate({args.messages}, size_profile={args.size_profile!r}), "
        f"{sum(map(len, corpus)) / MB:.1f} MB; {len(QUERIES)} queries x {args.repeat}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if "sqlite" in backends:
            bench_backend("sqlite", f"sqlite:///{workdir / 'archive.db'}", corpus, args)
        if "postgresql" in backends:
            from tests.servers.postgres import PostgresServer

            server = PostgresServer()
            server.start()
            try:
                bench_backend("postgresql", server.url(server.create_database()), corpus, args)
            finally:
                server.stop()
        if "notmuch" in backends:
            del corpus
            bench_notmuch(corpus_args, workdir, args.repeat)


if __name__ == "__main__":
    main()

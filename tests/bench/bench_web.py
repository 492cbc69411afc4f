"""Benchmark of the web archive: search page and message page server time at 100,000 messages.

Why this script exists: the web archive has a target (search page
p95 ≤ 150 ms, message page p95 ≤ 100 ms server time, 100,000 messages, SQLite and
PostgreSQL); docs/performance.md ("## Web archive") records the figures. Not a
test: run it by hand::

    .venv/bin/python -m tests.bench.bench_web --messages 100000
    .venv/bin/python -m tests.bench.bench_web --messages 5000 --backends sqlite

Per backend: the corpus of tests/bench/bench_search.py (``tests.corpus.generate``,
fixed seed) archived in two accounts and normalized; an admin and a reader of
one account; then, through the real application (Starlette's TestClient, in
process, signed in through the sign-in form), the search page for the 20 queries
of bench_search (first page, with the total and the facets, as admin and as the
reader, whose queries are scoped to its account) and the message page for 200
messages spread over the archive. Server time is measured by an ASGI wrapper
around the application, from the request's arrival to the last byte of the
response, so the client's own work is not counted; it includes the audit event
each page appends.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from syncer.archive.store import ArchiveStore
from syncer.config.schema import parse_config
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from syncer.web.app import create_app
from syncer.web.auth import hash_password
from tests.bench.bench_search import QUERIES, _percentile
from tests.corpus import generate

PASSWORD = "bench password"


class _Timed:
    """ASGI wrapper recording each request's server time in milliseconds: wall time, and
    the CPU time this process spent meanwhile (on a machine shared with other work,
    wall time is inflated by waiting for a core; CPU time is what the request costs,
    SQLite's work included since it runs in-process, PostgreSQL's server not)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times: list[float] = []
        self.cpu: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        await self.app(scope, receive, send)
        self.times.append((time.perf_counter() - started) * 1000)
        self.cpu.append((time.process_time() - cpu) * 1000)


def _fill(url: str, corpus: Sequence[bytes], workers: int) -> None:
    """Archive the corpus (unless ``corpus`` is empty: an archive kept from an earlier,
    perhaps interrupted run), normalize what awaits it, and add the two users."""
    with ArchiveStore.open(url, migrate=True) as store:
        for account in ("work", "home"):
            store.ensure_account(account, "imap")
        started = time.monotonic()
        for start in range(0, len(corpus), 1000):
            account = "work" if (start // 1000) % 2 == 0 else "home"
            batch = [
                RemoteMessage(folder="INBOX", uid=start + i + 1, raw=raw, flags=("\\Seen",))
                for i, raw in enumerate(corpus[start : start + 1000])
            ]
            store.archive_batch(account, "INBOX", 1, batch, None)
        counts = normalize_pending(store, workers=workers)
        print(
            f"archived {len(corpus)} messages and normalized {counts.processed} in "
            f"{time.monotonic() - started:.0f} s ({counts.workers} processes)"
        )
        hashed = hash_password(PASSWORD)
        if store.user("admin") is None:
            store.add_user("admin", "admin", hashed, actor="bench")
            store.add_user("reader", "reader", hashed, ("work",), actor="bench")
        if not url.startswith("sqlite"):
            from sqlalchemy import text

            with store.engine.connect() as conn:  # as autovacuum would, before measuring
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _signed_in(app: Any, name: str) -> TestClient:
    http = TestClient(app, follow_redirects=False)
    page = http.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    done = http.post("/login", data={"name": name, "password": PASSWORD, "csrf": token.group(1)})
    assert done.status_code == 303, done.text
    return http


def _measure(
    timed: _Timed, run: Callable[[str], int], items: Sequence[str], repeat: int
) -> tuple[list[float], list[float]]:
    for item in items:
        run(item)  # warm-up
    timed.times.clear()
    timed.cpu.clear()
    for _ in range(repeat):
        for item in items:
            assert run(item) == 200, item
    return list(timed.times), list(timed.cpu)


def _report(label: str, measured: tuple[list[float], list[float]], target: float) -> None:
    times, cpu = measured
    p95 = _percentile(times, 0.95)
    verdict = "ok" if p95 <= target else "OVER TARGET"
    print(
        f"{label:<32} n={len(times):4}  wall p50 {_percentile(times, 0.5):6.1f} "
        f"p95 {p95:6.1f} ms ({verdict}, target {target:.0f})  cpu p50 "
        f"{_percentile(cpu, 0.5):6.1f} p95 {_percentile(cpu, 0.95):6.1f} ms  "
        f"load {os.getloadavg()[0]:.1f}"
    )


def bench_backend(name: str, url: str, corpus: Sequence[bytes], args: argparse.Namespace) -> None:
    _fill(url, corpus, args.workers)
    store = ArchiveStore.open(url)
    try:
        timed = _Timed(create_app(parse_config({"archive": {"url": url}}), store, secret="b"))
        total = store.message_count()
        step = max(1, total // 200)
        ids = [str(pk) for pk in range(1, total + 1, step)][:200]
        queries = [q for q, _ in QUERIES]
        # The store's own search, as bench_search measures it: how much the load inflates.
        started = time.perf_counter()
        for q in queries:
            store.search(q, limit=50)
        print(f"{name}: store.search alone, mean {(time.perf_counter() - started) * 50:.1f} ms")
        for user in ("admin", "reader"):
            http = _signed_in(timed, user)

            def search(q: str, http: TestClient = http) -> int:
                status: int = http.get("/search", params={"q": q}).status_code
                return status

            _report(
                f"{name}: search page ({user})", _measure(timed, search, queries, args.repeat), 150
            )

        http = _signed_in(timed, "admin")

        def message(pk: str) -> int:
            status: int = http.get(f"/messages/{pk}").status_code
            return status

        _report(f"{name}: message page (admin)", _measure(timed, message, ids, 1), 100)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--pg-url", help="measure (and finish normalizing) an archive already in this database"
    )
    args = parser.parse_args(argv)
    if args.pg_url:
        bench_backend("postgresql", args.pg_url, [], args)
        return
    kept = args.workdir is not None and (args.workdir / "web.db").exists()
    wanted = args.messages if not kept or "postgresql" in args.backends else 0
    corpus = [m.raw for m in generate(wanted, size_profile="small")] if wanted else []
    print(
        f"corpus: tests.corpus.generate({args.messages}, size_profile='small'); "
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        backends = args.backends.split(",")
        if "sqlite" in backends:
            # An archive kept in --workdir by an earlier run is measured again, not rebuilt.
            path = workdir / "web.db"
            kept_corpus: Sequence[bytes] = [] if path.exists() else corpus
            bench_backend("sqlite", f"sqlite:///{path}", kept_corpus, args)
        if "postgresql" in backends:
            from tests.servers.postgres import PostgresServer

            server = PostgresServer()
            server.start()
            try:
                bench_backend("postgresql", server.url(server.create_database()), corpus, args)
            finally:
                server.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

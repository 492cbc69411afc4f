"""Benchmark of the relay: queueing forwards, flushing the outbox, building a digest.

Why this script exists: a forward rule over a busy mailbox (or ``--backfill``
over an archive) queues one message per archived message, and the flush sends
them one SMTP transaction each; docs/performance.md records what that costs
("## Digests and forwards"). Not a test: run it by hand.

Measured on ``tests.corpus.generate(N)`` archived and normalized into a
temporary SQLite archive before the clock starts, with the aiosmtpd test server
on loopback (plain, no TLS) as the receiver:

* ``apply_forwards`` with ``--backfill`` (select, read raw, compose, queue);
* ``flush_outbox`` of those N messages over one connection;
* ``run_digest`` over the N messages (select, count, list ``max_items``, render).

    .venv/bin/python -m tests.bench.bench_relay [--messages 2000] [--mode redirect]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.relay.digests import digest_config, run_digest
from syncer.relay.forwards import apply_forwards, select_rules
from syncer.relay.outbox import flush_outbox
from syncer.sync.normalize import normalize_pending
from tests.corpus import generate
from tests.fixtures_smtp import relay_config
from tests.servers.smtp import SMTPTestServer

MB = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--mode", choices=["redirect", "attach"], default="redirect")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SMTPTestServer(Path(tmp) / "smtp") as server:
        store = ArchiveStore.open(f"sqlite:///{tmp}/archive.db", migrate=True)
        store.ensure_account("bench", "imap")
        batch = [
            RemoteMessage(folder="INBOX", uid=uid, raw=item.raw)
            for uid, item in enumerate(generate(args.messages), start=1)
        ]
        store.archive_batch("bench", "INBOX", 1, batch, None)
        normalize_pending(store)
        total = sum(len(m.raw) for m in batch)
        config = relay_config(
            server,
            forwards=[
                {
                    "name": "all",
                    "query": "",
                    "smtp": "out",
                    "from": "syncer@example.com",
                    "to": ["dest@example.net"],
                    "mode": args.mode,
                }
            ],
            digests=[
                {
                    "name": "daily",
                    "schedule": "0 7 * * *",
                    "smtp": "out",
                    "from": "syncer@example.com",
                    "to": ["me@example.com"],
                }
            ],
        )
        print(f"{args.messages} messages, {total / MB:.1f} MB, forward mode {args.mode}")

        started = time.perf_counter()
        [run] = apply_forwards(store, select_rules(config), backfill=True)
        queued = time.perf_counter() - started
        print(f"queue:  {run.queued} in {queued:.2f} s = {run.queued / queued:.0f} msg/s")

        started = time.perf_counter()
        result = flush_outbox(store, config)
        sent = time.perf_counter() - started
        print(
            f"flush:  {len(result.sent)} in {sent:.2f} s = {len(result.sent) / sent:.0f} msg/s, "
            f"{total / MB / sent:.1f} MB/s"
        )

        started = time.perf_counter()
        digest = run_digest(store, digest_config(config, "daily"), dry_run=True)
        built = time.perf_counter() - started
        print(f"digest: {digest.count} matched, {digest.listed} listed in {built * 1000:.0f} ms")
        store.close()


if __name__ == "__main__":
    main()

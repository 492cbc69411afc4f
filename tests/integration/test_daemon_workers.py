"""Three `syncer run` workers share six accounts on one PostgreSQL archive.

Mail keeps arriving while they run; one worker is killed with SIGKILL in the middle
of a long sync. Afterwards: every message on the server is in the archive exactly
once, no two runs of one account overlapped in time (read from ``sync_runs``), and
the killed worker's account was taken over by another worker once its lease expired.

The workers get distinct names (``SYNCER_WORKER``), as on separate machines: a holder
on this host's own name whose pid is gone would be taken over at once instead.
"""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from syncer.archive.admin_views import RunView
from syncer.archive.store import ArchiveStore
from tests.integration._daemon import (
    Daemon,
    account_toml,
    daemons,
    message,
    syncer_cli,
    wait_until,
    write_config,
)
from tests.servers.dovecot import DovecotServer, MailUser

__all__ = ["daemons"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = 6
TTL = 4.0  # lease_ttl; heartbeat 1 s
BIG = "acct0"  # seeded with enough mail, downloaded slowly, to be killed mid-sync


class Arrivals(threading.Thread):
    """APPENDs a message to a random account every ~0.15 s until stopped."""

    def __init__(self, server: DovecotServer, users: list[MailUser]) -> None:
        super().__init__(daemon=True)
        self.server, self.users = server, users
        self.done = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        try:
            while not self.done.wait(0.15):
                user = rng.choice(self.users)
                folder = rng.choice(["INBOX", "Archive"])
                self.server.append(user.name, folder, message(1000 + self.count, tag="live"))
                self.count += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_three_workers_share_six_accounts_and_take_over_a_killed_one(
    tmp_path: Path,
    dovecot: DovecotServer,
    pg_url: str,
    daemons: list[Daemon],
) -> None:
    users = [dovecot.add_user() for _ in range(ACCOUNTS)]
    try:
        _run(tmp_path, dovecot, pg_url, users, daemons)
    finally:
        for daemon in daemons:
            daemon.kill()
        for user in users:
            dovecot.remove_user(user.name)


def _run(
    tmp_path: Path,
    dovecot: DovecotServer,
    pg_url: str,
    users: list[MailUser],
    daemons: list[Daemon],
) -> None:
    names = [f"acct{i}" for i in range(ACCOUNTS)]
    dovecot.seed(users[0].name, (("INBOX", message(n, 3000), (), None) for n in range(600)))
    for i, user in enumerate(users):
        dovecot.create_folder(user.name, "Archive")
        for n in range(i):
            dovecot.append(user.name, "INBOX", message(n))
    accounts = [
        account_toml(
            dovecot,
            user,
            name,
            every="1s",
            # ~1.9 MB at 400 kB/s in batches of 20: ~5 s, long enough to be killed in.
            **({"batch_messages": 20, "max_bytes_per_second": 400_000} if name == BIG else {}),
        )
        for name, user in zip(names, users, strict=True)
    ]
    config = write_config(
        tmp_path / "syncer.toml",
        accounts,
        url=pg_url,
        scheduler={"lease_ttl": f"{TTL:g}s", "heartbeat": "1s", "grace_period": "5s"},
    )
    env = {f"PW_{name.upper()}": user.password for name, user in zip(names, users, strict=True)}
    assert syncer_cli(config, env, "init").returncode == 0

    arrivals = Arrivals(dovecot, users)
    workers = [Daemon(config, env, worker=f"w{i}") for i in (1, 2, 3)]
    daemons.extend(workers)
    for worker in workers:
        worker.start()
    arrivals.start()

    store = ArchiveStore.open(pg_url)
    try:
        # Kill whichever worker holds the big account while its download is under way.
        def big_holder() -> str | None:
            leases = {row.name: row.holder for row in store.leases()}
            holder = leases.get(f"account:{BIG}")
            return holder if holder and store.count_entries(BIG) >= 40 else None

        holder = wait_until("the big account half-synced", big_holder, 30, every=0.05)
        victim = next(w for w in workers if holder == f"{w.worker}:{w.pid}")
        victim.signal(signal.SIGKILL)
        victim.proc.wait(5)  # type: ignore[union-attr]
        killed_at = time.time()
        survivors = [w for w in workers if w is not victim]

        time.sleep(3)  # mail keeps coming while the lease runs out
        arrivals.done.set()
        arrivals.join(10)
        assert arrivals.error is None, arrivals.error
        assert arrivals.count > 20

        expected = {
            name: {folder: dovecot.uids(user.name, folder) for folder in ("INBOX", "Archive")}
            for name, user in zip(names, users, strict=True)
        }

        def everything_archived() -> bool:
            return all(_live_uids(store, name) == expected[name] for name in names)

        wait_until("every message archived", everything_archived, 40, every=0.5)
        for worker in survivors:
            assert worker.stop() == 0, worker.log_tail()

        # Exactly once: no entry beyond the server's messages (none were expunged).
        for name in names:
            total = sum(len(uids) for uids in expected[name].values())
            assert store.count_entries(name) == total, name
        runs = {name: store.runs(name, limit=10_000) for name in names}
    finally:
        store.close()

    for name, account_runs in runs.items():
        _assert_one_at_a_time(name, account_runs)

    # The killed worker's run was closed as abandoned by the worker that took over,
    # and only after the lease had expired (it was last renewed at most 1 s before).
    victim_name = f"{victim.worker}:{victim.pid}"
    big = sorted(runs[BIG], key=lambda r: r.started_at)
    (dead,) = [r for r in big if r.worker == victim_name and r.status != "ok"]
    assert dead.status == "failed" and (dead.error or "").startswith("abandoned")
    after = [r for r in big if r.started_at > dead.started_at]
    assert after and after[0].worker != victim_name
    delay = after[0].started_at.timestamp() - killed_at
    assert delay >= TTL - 1.0 - 0.5, f"taken over {delay:.1f} s after the kill, before expiry"
    assert after[-1].status == "ok"

    # The accounts were shared: the survivors both synced, and skipped busy accounts quietly.
    ok_workers = {r.worker for rs in runs.values() for r in rs if r.status == "ok"}
    assert {f"{w.worker}:{w.pid}" for w in survivors} <= ok_workers
    assert any(w.events("job.skipped") for w in workers)
    assert not any(w.events("job.failed") or w.events("job.crashed") for w in workers)


def _live_uids(store: ArchiveStore, account: str) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {}
    for folder in ("INBOX", "Archive"):
        result[folder] = sorted(uid for uid, _v, _sha, _f, gone in store.entries(account, folder))
    return result


def _assert_one_at_a_time(account: str, runs: list[RunView]) -> None:
    ordered = sorted(runs, key=lambda r: r.started_at)
    for run in ordered:
        assert run.finished_at is not None, f"{account}: run {run.run_id} never closed"
    for before, after in itertools.pairwise(ordered):
        assert before.finished_at is not None and before.finished_at <= after.started_at, (
            f"{account}: run {before.run_id} by {before.worker} overlaps "
            f"run {after.run_id} by {after.worker}"
        )

"""Leases keep two workers off one account, on SQLite and PostgreSQL.

Why: two syncs of one account at once would fight over cursors; the lease is
the only thing preventing it, so it must be atomic under contention and must
not outlive a dead holder.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from syncer.archive.store import ArchiveStore
from syncer.errors import LeaseHeld


def test_second_holder_is_refused_with_the_holder_named(archive_store: ArchiveStore) -> None:
    archive_store.acquire_lease("account:work", "worker-a", ttl_seconds=60)
    with pytest.raises(LeaseHeld) as info:
        archive_store.acquire_lease("account:work", "worker-b", ttl_seconds=60)
    message = str(info.value)
    assert "Lease 'account:work' is held by worker-a" in message
    assert f"on host {socket.gethostname()}" in message
    assert "pid " in message and " until " in message and "UTC" in message
    assert info.value.hint and "expires" in info.value.hint

    # The holder may re-acquire (extend); other leases are independent.
    archive_store.acquire_lease("account:work", "worker-a", ttl_seconds=60)
    archive_store.acquire_lease("account:home", "worker-b", ttl_seconds=60)


def test_an_expired_lease_is_taken_over(archive_store: ArchiveStore) -> None:
    archive_store.acquire_lease("account:work", "dead-worker", ttl_seconds=0.05)
    time.sleep(0.2)
    archive_store.acquire_lease("account:work", "worker-b", ttl_seconds=60)
    with pytest.raises(LeaseHeld, match="held by worker-b"):
        archive_store.acquire_lease("account:work", "dead-worker", ttl_seconds=60)
    # The dead worker, waking up, learns that it lost the lease.
    with pytest.raises(LeaseHeld, match="held by worker-b"):
        archive_store.renew_lease("account:work", "dead-worker", ttl_seconds=60)


def test_renew_and_release(archive_store: ArchiveStore) -> None:
    archive_store.acquire_lease("l", "a", ttl_seconds=0.05)
    archive_store.renew_lease("l", "a", ttl_seconds=60)
    time.sleep(0.2)
    with pytest.raises(LeaseHeld):  # renewed, so not expired
        archive_store.acquire_lease("l", "b", ttl_seconds=60)
    archive_store.release_lease("l", "b")  # not b's: nothing happens
    with pytest.raises(LeaseHeld):
        archive_store.acquire_lease("l", "b", ttl_seconds=60)
    assert archive_store.lease_holder("l") == "a"
    archive_store.release_lease("l", "a")
    assert archive_store.lease_holder("l") is None
    with pytest.raises(LeaseHeld, match="released"):
        archive_store.renew_lease("l", "a", ttl_seconds=60)
    archive_store.acquire_lease("l", "b", ttl_seconds=60)


def test_exactly_one_of_many_concurrent_takers_wins(archive_store: ArchiveStore) -> None:
    takers = 8
    barrier = threading.Barrier(takers)
    winners: list[str] = []
    losers: list[str] = []
    errors: list[BaseException] = []

    def take(holder: str) -> None:
        barrier.wait()
        try:
            archive_store.acquire_lease("contended", holder, ttl_seconds=60)
            winners.append(holder)
        except LeaseHeld:
            losers.append(holder)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(winners) == 1
    assert len(losers) == takers - 1


@pytest.mark.parametrize("name", ["account:work", "retention", "outbox", "digest:morning"])
def test_every_jobs_lease_is_taken_at_once_from_a_killed_holder_on_this_host(
    archive_store: ArchiveStore, name: str
) -> None:
    import subprocess
    import sys

    from syncer.archive.leases import hold_lease

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now free: a holder that was SIGKILLed looks like this
    dead = f"{socket.gethostname()}:{child.pid}"
    archive_store.acquire_lease(name, dead, ttl_seconds=3600)

    with hold_lease(archive_store, name, wait=False, holder="worker-b", ttl=60):
        assert archive_store.lease_holder(name) == "worker-b"
    assert archive_store.lease_holder(name) is None

    # A live holder is respected, whatever the job.
    archive_store.acquire_lease(name, f"{socket.gethostname()}:{os.getpid()}", ttl_seconds=60)
    with (
        pytest.raises(LeaseHeld),
        hold_lease(archive_store, name, wait=False, holder="worker-b", ttl=60),
    ):
        pass

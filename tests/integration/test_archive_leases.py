"""Leases keep two workers off one account, on SQLite and PostgreSQL.

Why: two syncs of one account at once would fight over cursors; the lease is
the only thing preventing it, so it must be atomic under contention and must
not outlive a dead holder.
"""

from __future__ import annotations

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

"""Named, expiring leases in the database: how workers keep off each other's accounts.

Why this module exists: several ``syncer`` processes (a timer and a manual run,
or workers on several hosts sharing PostgreSQL) may try to sync one account at
once. They coordinate through one row per lease, taken with a single atomic
``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at < now OR holder = me``:
the database decides who wins, on SQLite (inside ``BEGIN IMMEDIATE``) and on
PostgreSQL (the conflicting row is locked and the WHERE re-checked) alike. A
holder that dies stops renewing, and its lease is taken over once it expires.

Known limit: expiry is judged by the clock of the process asking, so hosts
sharing a database need roughly synchronised clocks (NTP); keep TTLs well
above any skew.

This is the one lease module. The functions at the top run on a connection inside
the caller's write transaction (:class:`~syncer.archive.store.ArchiveStore` wraps
them); :func:`hold_lease` and :class:`Lease` below are what every job holds a lease
with (a sync, normalize, retention, a digest, the outbox, an import): taken,
renewed in the background, released on exit, taken over at once from a dead holder
on this host, and with :meth:`Lease.heartbeat` the one cooperative stop signal
(:class:`~syncer.errors.Stopped`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, case, delete, or_, select, update

from syncer.archive.engine import Capabilities
from syncer.archive.models import leases
from syncer.errors import LeaseHeld, Stopped, SyncerError

if TYPE_CHECKING:
    from typing import Protocol

    class LeaseStore(Protocol):
        """What holding a lease needs of the store (:class:`~syncer.archive.store.ArchiveStore`)."""

        def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> None: ...
        def renew_lease(self, name: str, holder: str, ttl_seconds: float) -> None: ...
        def release_lease(self, name: str, holder: str) -> None: ...
        def lease_holder(self, name: str) -> str | None: ...


log = structlog.get_logger(__name__)

LEASE_TTL_SECONDS = 300.0
_WAIT_POLL_SECONDS = 2.0

_HINT = (
    "Another syncer is working on it; wait for that run to finish. If that process is "
    "dead, its lease is taken over automatically once it expires."
)


def _held(conn: Connection, name: str) -> LeaseHeld:
    row = conn.execute(select(leases).where(leases.c.name == name)).one_or_none()
    if row is None:  # released between our attempt and this look-up
        return LeaseHeld(f"Lease {name!r} changed hands while it was being taken.", hint=_HINT)
    until = row.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return LeaseHeld(
        f"Lease {name!r} is held by {row.holder} (pid {row.pid} on host {row.host}) until {until}.",
        hint=_HINT,
    )


def acquire(
    conn: Connection,
    caps: Capabilities,
    *,
    name: str,
    holder: str,
    ttl_seconds: float,
    pid: int,
    host: str,
    now: datetime,
) -> None:
    """Take (or extend, when already ours) the lease ``name`` until ``now + ttl``.

    :raises LeaseHeld: when another holder has it and it has not expired.
    """
    expires = now + timedelta(seconds=ttl_seconds)
    insert = caps.insert(leases).values(
        name=name,
        holder=holder,
        pid=pid,
        host=host,
        acquired_at=now,
        expires_at=expires,
        heartbeat_at=now,
    )
    excluded = insert.excluded
    stmt = insert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "holder": excluded.holder,
            "pid": excluded.pid,
            "host": excluded.host,
            # Re-acquiring our own lease keeps the time we first took it.
            "acquired_at": case(
                (leases.c.holder == excluded.holder, leases.c.acquired_at),
                else_=excluded.acquired_at,
            ),
            "expires_at": excluded.expires_at,
            "heartbeat_at": excluded.heartbeat_at,
        },
        where=or_(leases.c.expires_at < now, leases.c.holder == holder),
    ).returning(leases.c.holder)
    # RETURNING gives a row only when the insert or the guarded update happened (a row
    # count is not reported for INSERT ... ON CONFLICT by every driver).
    if conn.execute(stmt).first() is None:
        raise _held(conn, name)


def renew(conn: Connection, *, name: str, holder: str, ttl_seconds: float, now: datetime) -> None:
    """Push the expiry of our lease to ``now + ttl``.

    :raises LeaseHeld: when the lease is no longer ours (it expired and was taken
        over, or was released).
    """
    result = conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=now + timedelta(seconds=ttl_seconds), heartbeat_at=now)
    )
    if result.rowcount == 1:
        return
    row = conn.execute(select(leases.c.holder).where(leases.c.name == name)).one_or_none()
    if row is None:
        raise LeaseHeld(
            f"Lease {name!r} is no longer held by {holder}: it was released.", hint=_HINT
        )
    raise _held(conn, name)


def release(conn: Connection, *, name: str, holder: str) -> None:
    """Give up the lease if we hold it; releasing a lease we do not hold does nothing."""
    conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


# --------------------------------------------------------------------------- holding


def holder_id(worker: str | None = None) -> str:
    """Who we are in a lease: worker name (default: the host name) and pid.

    Readable in the 'held by' message. A holder whose worker name is this host's
    name is judged dead as soon as its pid is gone (:func:`_holder_is_dead`); one
    with another name only when its lease expires.
    """
    return f"{worker or socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(holder: str | None) -> bool:
    """True for a lease holder on this host whose process no longer exists.

    Holders on other hosts are never judged dead here: their leases expire.
    A reused pid reads as alive, which only means waiting for the expiry.
    """
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    """A lease while it is held (an account's, or a job's such as ``normalize``);
    calling it is the per-batch heartbeat.

    A thread renews the lease every ``renew_every`` seconds, so that a batch slower
    than the TTL (a throttled download, a slow server) does not lose it; a call
    renews too when a fifth of the TTL has passed. When a renewal finds the lease
    gone (it expired and another worker took it), the next call raises
    :class:`LeaseHeld` and the run fails rather than write next to the new holder.
    """

    def __init__(
        self, store: LeaseStore, name: str, holder: str, ttl: float, renew_every: float
    ) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl
        self._store = store
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._lost: LeaseHeld | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, args=(renew_every,), name=f"renew {name}", daemon=True
        )
        self._thread.start()

    def __call__(self) -> None:
        if self._lost is not None:
            raise self._lost
        if time.monotonic() - self._last > self.ttl / 5:
            self._renew()

    def _renew(self) -> None:
        with self._lock:
            self._store.renew_lease(self.name, self.holder, self.ttl)
            self._last = time.monotonic()

    def _renew_loop(self, every: float) -> None:
        while not self._done.wait(every):
            try:
                self._renew()
            except LeaseHeld as exc:
                log.error("lease.lost", lease=self.name, error=exc.message)
                self._lost = exc
                return
            except SyncerError as exc:  # the database hiccuped; the next renewal may work
                log.warning("lease.renew_failed", lease=self.name, error=exc.message)

    def heartbeat(self, stop: threading.Event | None) -> Callable[[], None]:
        """The per-batch call of a stoppable job: renew, then raise :class:`Stopped`
        once ``stop`` is set (the batch before it is committed; the next run resumes)."""
        if stop is None:
            return self

        def beat() -> None:
            self()
            if stop.is_set():
                raise Stopped()

        return beat

    def stop_renewing(self) -> None:
        self._done.set()
        self._thread.join()


def account_lease(
    store: LeaseStore,
    account: str,
    *,
    wait: bool,
    ttl: float = LEASE_TTL_SECONDS,
    holder: str | None = None,
    renew_every: float | None = None,
) -> AbstractContextManager[Lease]:
    """Hold the account's lease (``account:<name>``) for the block: :func:`hold_lease`."""
    return hold_lease(
        store, f"account:{account}", wait=wait, ttl=ttl, holder=holder, renew_every=renew_every
    )


@contextmanager
def hold_lease(
    store: LeaseStore,
    name: str,
    *,
    wait: bool,
    ttl: float = LEASE_TTL_SECONDS,
    holder: str | None = None,
    renew_every: float | None = None,
) -> Iterator[Lease]:
    """Hold the lease ``name`` for the block; yields the :class:`Lease` (the heartbeat).

    The one way every job (a sync, normalize, retention, a digest, the outbox) keeps
    other workers out: renewed in the background, released on exit, and taken over
    at once from a holder on this host whose process is gone.

    :param holder: who we are (default :func:`holder_id`).
    :param renew_every: seconds between background renewals (default ``ttl / 5``).
    :raises LeaseHeld: when another live holder has it and ``wait`` is false.
    """
    holder = holder or holder_id()
    while True:
        try:
            store.acquire_lease(name, holder, ttl)
            break
        except LeaseHeld:
            stale = store.lease_holder(name)
            if _holder_is_dead(stale):
                # Killed on this host (SIGKILL, power loss of a container...): it can never
                # finish, so waiting for the expiry would only delay the next run.
                log.warning("lease.taken_over", lease=name, dead_holder=stale)
                store.release_lease(name, stale or "")
                continue
            if not wait:
                raise
            time.sleep(_WAIT_POLL_SECONDS)
    lease = Lease(store, name, holder, ttl, renew_every or ttl / 5)
    try:
        yield lease
    finally:
        lease.stop_renewing()
        store.release_lease(name, holder)

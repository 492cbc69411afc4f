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

The functions here run on a connection inside the caller's write transaction;
:class:`~syncer.archive.store.ArchiveStore` wraps them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, or_, select, update

from syncer.archive.engine import Capabilities
from syncer.archive.models import leases
from syncer.errors import LeaseHeld

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

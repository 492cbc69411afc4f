"""What the daemon's push mode records in the archive, for ``syncer status`` and metrics.

Why in the archive: ``syncer status`` runs in another process than ``syncer run``
(perhaps on another host sharing PostgreSQL), so the push state of each account
is a ``job_state`` row (kind ``push``, name = the account) holding a small JSON
document, written when the connection comes up or goes down -- not per event.
No migration: ``job_state.data`` is free text for exactly such state.

Public API (a mixin of :class:`~syncer.archive.store.ArchiveStore`):
:meth:`StorePush.set_push_state`, :meth:`StorePush.push_states`,
:meth:`StorePush.arrival_delays`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update

from syncer.archive.models import accounts, entries, folders, job_state, utcnow
from syncer.archive.store_base import StoreCore

#: The ``job_state.kind`` of push rows.
PUSH_KIND = "push"


class StorePush(StoreCore):
    """Push state per account, and the delays the push metric observes."""

    def set_push_state(self, account: str, state: dict[str, Any]) -> None:
        """Replace the push state of ``account`` (a JSON-serialisable dict)."""
        data = json.dumps(state, sort_keys=True)
        key = and_(job_state.c.kind == PUSH_KIND, job_state.c.name == account)
        now = utcnow()
        with self._write(f"recording the push state of {account!r}") as conn:
            done = conn.execute(update(job_state).where(key).values(data=data, updated_at=now))
            if done.rowcount == 0:
                conn.execute(
                    job_state.insert().values(
                        kind=PUSH_KIND, name=account, data=data, updated_at=now
                    )
                )

    def push_states(self) -> dict[str, dict[str, Any]]:
        """Account name -> the last push state recorded for it (``updated_at`` added)."""
        with self._read("reading the push states") as conn:
            rows = conn.execute(
                select(job_state.c.name, job_state.c.data, job_state.c.updated_at).where(
                    job_state.c.kind == PUSH_KIND
                )
            ).all()
        states: dict[str, dict[str, Any]] = {}
        for row in rows:
            try:
                state = json.loads(row.data or "{}")
            except ValueError:
                continue  # written by something else; not ours to interpret
            if isinstance(state, dict):
                states[row.name] = state | {"updated_at": row.updated_at.isoformat()}
        return states

    def arrival_delays(self, account: str, since: datetime) -> list[float]:
        """Seconds from INTERNALDATE to being archived, for the entries of ``account``
        first archived at or after ``since`` (entries without INTERNALDATE left out)."""
        query = (
            select(entries.c.internaldate, entries.c.first_seen_at)
            .join(folders, folders.c.id == entries.c.folder_id)
            .join(accounts, accounts.c.id == folders.c.account_id)
            .where(
                accounts.c.name == account,
                entries.c.first_seen_at >= since,
                entries.c.internaldate.is_not(None),
            )
        )
        with self._read(f"reading arrival delays of {account!r}") as conn:
            rows = conn.execute(query).all()
        return [max(0.0, (row.first_seen_at - row.internaldate).total_seconds()) for row in rows]

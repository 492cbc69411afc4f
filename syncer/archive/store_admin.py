"""The archive store's bookkeeping side: leases, runs, status, verifying blobs.

Why this module exists: these methods serve the CLI (``syncer status``,
``syncer verify``) and the scheduler rather than the sync hot
path; they live apart from :mod:`syncer.archive.store` to keep both modules
readable. :class:`~syncer.archive.store.ArchiveStore` inherits them, so callers
see one class.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from syncer.archive import leases as lease_ops
from syncer.archive.admin_views import (
    AccountStatus,
    ArchiveStatus,
    ArchiveTotals,
    FolderStatus,
    LeaseView,
    RunView,
)
from syncer.archive.blobs import BlobStore
from syncer.archive.models import (
    accounts,
    blobs,
    entries,
    folders,
    leases,
    messages,
    outbox,
    sync_runs,
    utcnow,
)
from syncer.archive.store_base import StoreCore
from syncer.archive.store_normalize import awaiting_normalization
from syncer.errors import ArchiveError

#: Blob rows listed per query by verify(), and the most compressed bytes fetched at once.
_VERIFY_PAGE = 500
_VERIFY_FETCH_BYTES = 16 * 1024 * 1024

#: One entry as tests and ``syncer check`` see it: (uid, uidvalidity, sha256, flags, gone).
EntryRow = tuple[int, int, str, tuple[str, ...], bool]


class StoreAdmin(StoreCore):
    """Leases, runs, status, blob reads and verification (see :class:`ArchiveStore`)."""

    # ------------------------------------------------------------------ leases

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> None:
        """Take the lease ``name`` for ``ttl_seconds`` (or extend it, if ``holder`` has it).

        An expired lease is taken over from its previous holder.

        :raises LeaseHeld: when another holder has it and it has not expired; the
            message names that holder, its pid and host, and the expiry.
        """
        with self._write(f"taking lease {name!r}") as conn:
            lease_ops.acquire(
                conn,
                self._caps,
                name=name,
                holder=holder,
                ttl_seconds=ttl_seconds,
                pid=self._pid,
                host=self._host,
                now=utcnow(),
            )

    def renew_lease(self, name: str, holder: str, ttl_seconds: float) -> None:
        """Extend our lease to ``ttl_seconds`` from now.

        :raises LeaseHeld: when the lease is no longer ours.
        """
        with self._write(f"renewing lease {name!r}") as conn:
            lease_ops.renew(conn, name=name, holder=holder, ttl_seconds=ttl_seconds, now=utcnow())

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up; does nothing when ``holder`` does not hold it."""
        with self._write(f"releasing lease {name!r}") as conn:
            lease_ops.release(conn, name=name, holder=holder)

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` (expired or not), or None when nobody does."""
        with self._read(f"reading lease {name!r}") as conn:
            return conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar()

    def leases(self) -> list[LeaseView]:
        """Every lease, by name; ``expired`` ones are free to take."""
        now = utcnow()
        with self._read("listing leases") as conn:
            rows = conn.execute(select(leases).order_by(leases.c.name)).all()
        return [
            LeaseView(
                name=row.name,
                holder=row.holder,
                acquired_at=row.acquired_at,
                expires_at=row.expires_at,
                heartbeat_at=row.heartbeat_at,
                expired=row.expires_at < now,
            )
            for row in rows
        ]

    def outbox_depth(self) -> int:
        """Messages in the outbox not sent yet (pending or being sent)."""
        with self._read("counting the outbox") as conn:
            query = select(func.count()).where(outbox.c.status.in_(("pending", "sending")))
            return int(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ runs

    def start_run(
        self, account: str, run_id: str, kind: str = "sync", *, worker: str | None = None
    ) -> None:
        """Record that a run of ``kind`` started for ``account`` (status ``running``).

        :raises ArchiveError: when the account is unknown or ``run_id`` is taken.
        """
        with self._write(f"starting run {run_id!r} of {account!r}") as conn:
            conn.execute(
                sync_runs.insert().values(
                    run_id=run_id,
                    account_id=self._account_id(conn, account),
                    kind=kind,
                    started_at=utcnow(),
                    status="running",
                    pid=self._pid,
                    host=self._host,
                    worker=worker,
                )
            )

    def finish_run(
        self,
        run_id: str,
        *,
        ok: bool,
        error: str | None,
        new: int,
        flags_changed: int,
        expunged: int,
        bytes: int,
        resume_at: datetime | None = None,
    ) -> None:
        """Record how a run ended, with its counters.

        :param resume_at: the run stopped at a provider limit or the daily byte
            budget; the next run starts no earlier (:meth:`resume_at`).

        :raises ArchiveError: when there is no run ``run_id``.
        """
        with self._write(f"finishing run {run_id!r}") as conn:
            result = conn.execute(
                update(sync_runs)
                .where(sync_runs.c.run_id == run_id)
                .values(
                    finished_at=utcnow(),
                    status="ok" if ok else "failed",
                    error=error,
                    new=new,
                    flags_changed=flags_changed,
                    expunged=expunged,
                    bytes=bytes,
                    resume_at=resume_at,
                )
            )
            if result.rowcount == 0:
                raise ArchiveError(f"No run {run_id!r} in the archive to finish.")

    def resume_at(self, account: str, kind: str = "sync") -> datetime | None:
        """When the latest finished run of ``account`` said the next may start, or None."""
        with self._read(f"reading when {account!r} resumes") as conn:
            query = (
                select(sync_runs.c.resume_at)
                .join(accounts, accounts.c.id == sync_runs.c.account_id)
                .where(
                    accounts.c.name == account,
                    sync_runs.c.kind == kind,
                    sync_runs.c.status != "running",
                )
                .order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
                .limit(1)
            )
            found: datetime | None = conn.execute(query).scalar()
            return found

    def bytes_since(self, account: str, since: datetime) -> tuple[int, datetime | None]:
        """Bytes downloaded by runs of ``account`` started at or after ``since``, and
        when the earliest of those runs started (the daily budget frees up a day later)."""
        with self._read(f"adding up the downloads of {account!r}") as conn:
            query = (
                select(
                    func.coalesce(func.sum(sync_runs.c.bytes), 0), func.min(sync_runs.c.started_at)
                )
                .join(accounts, accounts.c.id == sync_runs.c.account_id)
                .where(
                    accounts.c.name == account,
                    sync_runs.c.started_at >= since,
                    sync_runs.c.bytes > 0,
                )
            )
            total, earliest = conn.execute(query).one()
            return int(total), earliest

    def abandon_runs(self, account: str, error: str, kind: str = "sync") -> int:
        """Record every run of ``account`` still ``running`` as failed with ``error``.

        Call it holding the account's lease: runs start only under the lease, so
        such runs belong to a worker that died before recording their end.

        :returns: how many runs were closed.
        """
        with self._write(f"closing abandoned runs of {account!r}") as conn:
            account_id = self._find_account(conn, account)
            if account_id is None:
                return 0
            result = conn.execute(
                update(sync_runs)
                .where(
                    sync_runs.c.account_id == account_id,
                    sync_runs.c.kind == kind,
                    sync_runs.c.status == "running",
                )
                .values(finished_at=utcnow(), status="failed", error=error)
            )
            return int(result.rowcount)

    def last_successes(self, kind: str = "sync") -> dict[str, datetime]:
        """Per account, when its last successful run of ``kind`` ended (alerting: an archive
        that silently stopped shows as an old time)."""
        query = (
            select(accounts.c.name, func.max(sync_runs.c.finished_at))
            .join(accounts, accounts.c.id == sync_runs.c.account_id)
            .where(sync_runs.c.kind == kind, sync_runs.c.status == "ok")
            .group_by(accounts.c.name)
        )
        with self._read("reading the last successful runs") as conn:
            return {name: when for name, when in conn.execute(query) if when is not None}

    def runs(self, account: str | None = None, limit: int = 20) -> list[RunView]:
        """The most recent runs, newest first (of ``account``, or of every account)."""
        query = (
            select(sync_runs, accounts.c.name.label("account"))
            .join(accounts, accounts.c.id == sync_runs.c.account_id)
            .order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
            .limit(limit)
        )
        if account is not None:
            query = query.where(accounts.c.name == account)
        with self._read("listing runs") as conn:
            rows = conn.execute(query).all()
        return [
            RunView(
                run_id=row.run_id,
                account=row.account,
                kind=row.kind,
                status=row.status,
                started_at=row.started_at,
                finished_at=row.finished_at,
                resume_at=row.resume_at,
                error=row.error,
                new=row.new,
                flags_changed=row.flags_changed,
                expunged=row.expunged,
                bytes=row.bytes,
                pid=row.pid,
                host=row.host,
                worker=row.worker,
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ status

    def status(self) -> ArchiveStatus:
        """What is in the archive: per account its folders and live entries, and the totals
        (see :class:`~syncer.archive.admin_views.ArchiveStatus`)."""
        live = entries.c.gone_at.is_(None) & entries.c.superseded_at.is_(None)
        with self._read("reading the archive status") as conn:
            account_rows = conn.execute(select(accounts).order_by(accounts.c.name)).all()
            # Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order differ.
            folder_rows = sorted(conn.execute(select(folders)).all(), key=lambda row: row.name)
            counts: dict[int, int] = {
                folder_id: count
                for folder_id, count in conn.execute(
                    select(entries.c.folder_id, func.count())
                    .where(live)
                    .group_by(entries.c.folder_id)
                )
            }
            blob_count, stored_bytes, raw_bytes = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(blobs.c.stored_size), 0),
                    func.coalesce(func.sum(blobs.c.size), 0),
                )
            ).one()
            message_count = conn.execute(select(func.count()).select_from(messages)).scalar_one()
            awaiting = conn.execute(
                select(func.count()).select_from(messages).where(awaiting_normalization())
            ).scalar_one()
        by_account: dict[int, list[FolderStatus]] = {row.id: [] for row in account_rows}
        for row in folder_rows:
            by_account[row.account_id].append(
                FolderStatus(
                    name=row.name,
                    display_name=row.display_name,
                    messages=counts.get(row.id, 0),
                    last_synced_at=row.last_synced_at,
                    deleted=row.deleted_at is not None,
                    # -1: a download stopped part-way (budget, limit, crash); the next run
                    # resumes after its last committed batch.
                    complete=row.messages is None or row.messages >= 0,
                )
            )
        return ArchiveStatus(
            database=self.url,
            blob_store=self._blobs.spec,
            accounts={
                row.name: self._account_status(row.name, row.protocol, by_account[row.id])
                for row in account_rows
            },
            totals=ArchiveTotals(
                messages=int(message_count),
                entries=sum(counts.values()),
                blobs=int(blob_count),
                stored_bytes=int(stored_bytes),
                raw_bytes=int(raw_bytes),
                awaiting_normalization=int(awaiting),
            ),
        )

    def _account_status(
        self, name: str, protocol: str, account_folders: list[FolderStatus]
    ) -> AccountStatus:
        synced = [f.last_synced_at for f in account_folders if f.last_synced_at is not None]
        return AccountStatus(
            protocol=protocol,
            messages=sum(f.messages for f in account_folders),
            last_synced_at=max(synced, default=None),
            folders=tuple(account_folders),
            resume_at=self.resume_at(name),
        )

    def folder_names(self) -> list[tuple[str, str]]:
        """``(account, folder display name)`` of every folder, sorted: cheap (no counts), for
        choosing a folder, where :meth:`status` would count every entry."""
        with self._read("listing folders") as conn:
            rows = conn.execute(
                select(accounts.c.name, folders.c.display_name).join(
                    accounts, accounts.c.id == folders.c.account_id
                )
            ).all()
        return sorted((account, name) for account, name in rows)

    def count_entries(self, account: str | None = None) -> int:
        """How many entries (gone and superseded included) the archive holds."""
        query = select(func.count()).select_from(entries)
        if account is not None:
            query = (
                query.join(folders, folders.c.id == entries.c.folder_id)
                .join(accounts, accounts.c.id == folders.c.account_id)
                .where(accounts.c.name == account)
            )
        with self._read("counting entries") as conn:
            return int(conn.execute(query).scalar_one())

    def entries(self, account: str, folder: str) -> list[EntryRow]:
        """Every entry of a folder: ``(uid, uidvalidity, sha256, flags, gone)``.

        Ordered by uidvalidity then uid; superseded entries are included (with
        ``gone`` False unless they were also expunged).
        """
        with self._read(f"listing entries of folder {folder!r} of {account!r}") as conn:
            folder_id = self._find_folder(conn, account, folder)
            if folder_id is None:
                return []
            query = (
                select(
                    entries.c.uid,
                    entries.c.uidvalidity,
                    messages.c.sha256,
                    entries.c.flags,
                    entries.c.gone_at,
                )
                .join(messages, messages.c.id == entries.c.message_pk)
                .where(entries.c.folder_id == folder_id)
                .order_by(entries.c.uidvalidity, entries.c.uid)
            )
            return [
                (uid, uidvalidity, sha, tuple(flags.split()), gone_at is not None)
                for uid, uidvalidity, sha, flags, gone_at in conn.execute(query)
            ]

    # ------------------------------------------------------------------ blobs

    def verify(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Re-read every blob (database and disk) and check it against its address.

        Memory stays bounded: blobs are listed a page at a time and their bytes
        fetched a few megabytes at a time; files are read in chunks.

        :param progress: called with the number of blobs just checked (an
            increment; the total is ``status().totals.blobs``).
        :returns: one line per corrupt or missing blob, e.g.
            ``blob 3fa2… (message 17): stored bytes hash to 9c1e…, expected 3fa2…``.
        """
        problems: list[str] = []
        after = ""
        while True:
            with self._read("verifying blobs") as conn:
                page = conn.execute(
                    select(
                        blobs.c.sha256,
                        blobs.c.size,
                        blobs.c.stored_size,
                        blobs.c.data.is_(None).label("on_disk"),
                        messages.c.id.label("message"),
                    )
                    .outerjoin(messages, messages.c.sha256 == blobs.c.sha256)
                    .where(blobs.c.sha256 > after)
                    .order_by(blobs.c.sha256)
                    .limit(_VERIFY_PAGE)
                ).all()
                if not page:
                    return problems
                group: list[Any] = []
                budget = 0
                for row in page:
                    if group and budget + row.stored_size > _VERIFY_FETCH_BYTES:
                        problems.extend(self._verify_group(conn, self._blobs, group))
                        if progress is not None:
                            progress(len(group))
                        group, budget = [], 0
                    group.append(row)
                    budget += 0 if row.on_disk else row.stored_size
                problems.extend(self._verify_group(conn, self._blobs, group))
                if progress is not None:
                    progress(len(group))
            after = page[-1].sha256

    @staticmethod
    def _verify_group(conn: Connection, store: BlobStore, group: list[Any]) -> list[str]:
        in_db = [row.sha256 for row in group if not row.on_disk]
        data: dict[str, bytes | None] = {}
        if in_db:
            query = select(blobs.c.sha256, blobs.c.data).where(blobs.c.sha256.in_(in_db))
            data.update((sha, blob) for sha, blob in conn.execute(query))
        problems = []
        for row in group:
            problem = store.check(row.sha256, row.size, data.get(row.sha256))
            if problem is not None:
                owner = f"message {row.message}" if row.message is not None else "no message"
                problems.append(f"blob {row.sha256} ({owner}): {problem}")
        data.clear()
        return problems

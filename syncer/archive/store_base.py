"""The plumbing under :class:`~syncer.archive.store.ArchiveStore`: engine, transactions, ids.

Why this module exists: the store's public methods are spread over
:mod:`syncer.archive.store` (folders, the hot path, sync state) and
:mod:`syncer.archive.store_admin` (runs, leases, status, verify) and other mixins to keep
each module readable; both build on :class:`StoreCore`, which opens the archive
(:meth:`StoreCore.open`, for the whole store or a class of some of its mixins: see
:mod:`syncer.archive.reader`), owns the engine, the blob store and the thread pool,
opens read and write transactions, reads a message's raw bytes, maps database
errors to :class:`~syncer.errors.ArchiveError`, and caches account and folder ids.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Dialect, Engine, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import UpdateBase

from syncer.archive.blobs import BlobStore, open_blob_store
from syncer.archive.engine import (
    capabilities,
    ensure_at_head,
    make_engine,
    mask_url,
    upgrade,
    write_engine,
)
from syncer.archive.models import accounts, blobs, folders
from syncer.archive.workers import Workers, default_threads
from syncer.errors import ArchiveError, SyncerError
from syncer.model import FolderCursor

T = TypeVar("T")


@contextmanager
def map_errors(what: str) -> Iterator[None]:
    """Turn a database failure into an :class:`ArchiveError` saying what was being done."""
    try:
        yield
    except SyncerError:
        raise
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise ArchiveError(f"Archive database error while {what}: {detail}".rstrip()) from exc


def flags_text(flags: Iterable[str]) -> str:
    """The stored form of a flag list: sorted, deduplicated, space-separated."""
    return " ".join(sorted(set(flags)))


def labels_text(labels: Iterable[str] | None) -> str | None:
    """The stored form of Gmail labels: sorted, deduplicated, one per line; None stays None.

    Label names may contain spaces but never a line break (one would be a server bug;
    it becomes a space here so a name stays one line).
    """
    if labels is None:
        return None
    return "\n".join(sorted({" ".join(label.splitlines()) for label in labels}))


def labels_tuple(text: str | None) -> tuple[str, ...] | None:
    """The inverse of :func:`labels_text`."""
    if text is None:
        return None
    return tuple(text.split("\n")) if text else ()


def execute_many(
    conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``conn.execute(statement, rows)``: one statement for many rows, the per-row work done once.

    Why: for each row of an executemany SQLAlchemy builds the parameters in
    Python, a few microseconds per value; saving normalized messages passes
    hundreds of thousands of values. On SQLite the statement is compiled once
    (cached: pass the same statement object), each parameter's bind processor
    (the one SQLAlchemy applies: storable text, dates as text) is looked up
    once, and the rows go to the driver as tuples in the compiled order.
    Elsewhere SQLAlchemy does it (on PostgreSQL it batches the rows into
    multi-row statements, which matters more).
    """
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        prepared = _prepared(statement, conn.dialect, tuple(rows[0]))
        if prepared is not None:
            sql, names, processors = prepared
            conn.exec_driver_sql(sql, [_bound(row, names, processors) for row in rows])
            return
    conn.execute(statement, list(rows))


def _bound(
    row: Mapping[str, Any],
    names: tuple[str, ...],
    processors: tuple[tuple[int, Callable[[Any], Any]], ...],
) -> tuple[Any, ...]:
    """One row's values in ``names`` order, each non-NULL value through its bind processor."""
    values = [row[name] for name in names]
    for index, process in processors:
        value = values[index]
        if value is not None:
            values[index] = process(value)
    return tuple(values)


@functools.lru_cache(maxsize=64)
def _prepared(
    statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]] | None:
    """(SQL, parameter names in order, ``(position, bind processor)`` of the parameters
    that have one) for rows with ``keys``; None when the statement needs parameters
    the rows do not give (defaults), or a processor binds NULL as something else
    (:func:`_bound` passes NULL as is)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    if not compiled.positional or not set(names) <= set(keys):
        return None
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(names):
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            if process(None) is not None:
                return None
            processors.append((index, process))
    return str(compiled), names, tuple(processors)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StoreCore:
    """Engine, blob store, thread pool, transactions and id caches of an archive store."""

    #: Seconds a query from a person (search, count, selection) may run before the
    #: database stops it: a pathological query fails with a clear error instead of
    #: holding the database (and a web worker) for minutes.
    query_timeout: float = 30.0

    def __init__(
        self, engine: Engine, blob_store: BlobStore, *, threads: int | None = None
    ) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self._caps = capabilities(engine)
        self._blobs = blob_store
        self._workers = Workers(default_threads() if threads is None else threads)
        self._account_ids: dict[str, int] = {}
        self._folder_ids: dict[tuple[int, str], int] = {}
        self._pid = os.getpid()
        self._host = socket.gethostname()

    @classmethod
    def open(
        cls,
        url: str | URL,
        blob_store: str = "db",
        *,
        migrate: bool = False,
        threads: int | None = None,
    ) -> Self:
        """Open the archive at ``url``, checking its schema is the one this syncer needs.

        :param blob_store: ``"db"`` or ``"fs:/path"`` (see :mod:`syncer.archive.blobs`).
        :param migrate: upgrade the schema to head first (``syncer init``, tests);
            otherwise a database not at head is refused.
        :param threads: threads for hashing and compression (default: the CPUs,
            at most 4; 0 or 1 keeps everything on the calling thread).
        :raises MigrationRequired: when the schema is not at head and ``migrate`` is false.
        :raises ArchiveError: for an unsupported URL or blob store, or an unreachable database.
        """
        store = open_blob_store(blob_store)
        engine = make_engine(url)
        try:
            with map_errors("opening the archive"):
                if migrate:
                    upgrade(engine)
                ensure_at_head(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, store, threads=threads)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the thread pool and every pooled connection."""
        self._workers.close()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The engine, for tests and tools (e.g. event hooks); not for queries."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return mask_url(self._engine.url)

    @property
    def blob_store(self) -> str:
        """The ``blob_store`` value the archive was opened with."""
        return self._blobs.spec

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        try:
            with map_errors(what), self._writer.begin() as conn:
                yield conn
        except BaseException:
            # A rolled-back transaction may have created rows whose ids we cached.
            self._account_ids.clear()
            self._folder_ids.clear()
            raise

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        """A read-only transaction; a consistent snapshot on both databases."""
        with map_errors(what), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _query(self, what: str) -> Iterator[Connection]:
        """:meth:`_read` for a query people wrote, stopped after :attr:`query_timeout`:
        ``statement_timeout`` on PostgreSQL, a progress handler that interrupts on SQLite.

        :raises ArchiveError: saying the query ran too long (and what to do).
        """
        limit = self.query_timeout
        with self._read(what) as conn:
            if self._caps.dialect == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(limit * 1000))}")
                stop = None
            else:
                stop = conn.connection.driver_connection
                assert stop is not None  # a live connection inside the transaction
                deadline = time.monotonic() + limit
                stop.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            try:
                yield conn
            except SQLAlchemyError as exc:
                text = str(getattr(exc, "orig", exc)).lower()
                if "interrupted" in text or "statement timeout" in text:
                    raise ArchiveError(
                        f"The query ran longer than {limit:g} s and was stopped ({what}).",
                        hint="Narrow it (a folder:, from: or date term) and try again.",
                    ) from exc
                raise
            finally:
                if stop is not None:
                    stop.set_progress_handler(None, 0)

    # ------------------------------------------------------------------ blobs

    def get_raw(self, sha256: str) -> bytes:
        """The raw bytes of an archived message, verified against ``sha256``.

        :raises ArchiveError: when there is no such blob.
        :raises BlobCorrupt: when the stored bytes no longer match.
        """
        with self._read(f"reading blob {sha256}") as conn:
            row = conn.execute(
                select(blobs.c.data).where(blobs.c.sha256 == sha256.lower())
            ).one_or_none()
        if row is None:
            raise ArchiveError(f"No message with SHA-256 {sha256} in the archive.")
        return self._blobs.load(sha256.lower(), row.data)

    # ------------------------------------------------------------------ ids

    def _account_id(self, conn: Connection, account: str) -> int:
        found = self._find_account(conn, account)
        if found is None:
            known = sorted(conn.execute(select(accounts.c.name)).scalars())
            raise ArchiveError(
                f"Account {account!r} is not in the archive "
                f"(known accounts: {', '.join(known) or 'none'}).",
                hint="Call ensure_account() before storing anything for it.",
            )
        return found

    def _find_account(self, conn: Connection, account: str) -> int | None:
        cached = self._account_ids.get(account)
        if cached is not None:
            return cached
        found = conn.execute(select(accounts.c.id).where(accounts.c.name == account)).scalar()
        if found is not None:
            self._account_ids[account] = found
        return found

    def _find_folder(self, conn: Connection, account: str, folder: str) -> int | None:
        """The id of a folder, or None when the account or folder is unknown."""
        account_id = self._find_account(conn, account)
        if account_id is None:
            return None
        cached = self._folder_ids.get((account_id, folder))
        if cached is not None:
            return cached
        found = conn.execute(
            select(folders.c.id).where(folders.c.account_id == account_id, folders.c.name == folder)
        ).scalar()
        if found is not None:
            self._folder_ids[(account_id, folder)] = found
        return found

    def _folder_id(self, conn: Connection, account: str, folder: str) -> int:
        """The id of a folder, created (display name = name) when the archive lacks it.

        :raises ArchiveError: when the account is unknown.
        """
        found = self._find_folder(conn, account, folder)
        if found is not None:
            return found
        account_id = self._account_id(conn, account)
        # A folder we were never told about by upsert_folders (e.g. POP3's INBOX).
        conn.execute(
            self._caps.insert(folders)
            .values(account_id=account_id, name=folder, display_name=folder)
            .on_conflict_do_nothing(index_elements=["account_id", "name"])
        )
        created = self._find_folder(conn, account, folder)
        assert created is not None
        return created

    # ------------------------------------------------------------------ cursors

    @staticmethod
    def _cursor_values(
        cursor: FolderCursor, uidvalidity: int | None, now: datetime
    ) -> dict[str, Any]:
        if uidvalidity is not None and cursor.uidvalidity != uidvalidity:
            raise ArchiveError(
                f"A cursor for UIDVALIDITY {cursor.uidvalidity} was given with changes for "
                f"UIDVALIDITY {uidvalidity}; the archive refuses to mix them."
            )
        values: dict[str, Any] = {
            "uidvalidity": cursor.uidvalidity,
            "uidnext": cursor.uidnext,
            "highestmodseq": cursor.highestmodseq,
            "messages": cursor.messages,
            "last_synced_at": now,
        }
        if cursor.last_full_scan is not None:
            values["last_full_scan_at"] = cursor.last_full_scan
        return values

    def _write_cursor(
        self,
        conn: Connection,
        folder_id: int,
        cursor: FolderCursor | None,
        uidvalidity: int | None,
        now: datetime,
    ) -> None:
        """Update the folder's sync state inside the caller's transaction (if a cursor is given)."""
        if cursor is not None:
            values = self._cursor_values(cursor, uidvalidity, now)
            conn.execute(update(folders).where(folders.c.id == folder_id).values(**values))

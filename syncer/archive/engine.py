"""Database engines for the archive, and the Alembic helpers that keep the schema current.

Why this module exists: SQLite and PostgreSQL need different connection set-up
(SQLite's pragmas and explicit transaction control, PostgreSQL's driver name),
and those differences are decided here, once, so the rest of the archive code
asks capability flags instead of testing dialect names everywhere.

Public API:

* :func:`make_engine` builds an :class:`~sqlalchemy.engine.Engine` for a URL;
  :func:`mask_url` hides its password for printing.
* :func:`capabilities` returns the :class:`Capabilities` of an engine.
* :func:`write_engine` returns the engine variant to use for write transactions
  (on SQLite they start with ``BEGIN IMMEDIATE``).
* :func:`upgrade`, :func:`downgrade`, :func:`current_revision`,
  :func:`head_revision` and :func:`ensure_at_head` drive Alembic without an
  ``alembic.ini``; the migration scripts ship as the package ``syncer.archive.migrations``.

Start-up cost: every ``syncer sync`` opens the store, and a no-change re-sync
is mostly interpreter start-up, so this module imports neither Alembic nor
SQLAlchemy's PostgreSQL dialect at module level (together about a sixth of a
no-change run). :func:`ensure_at_head` compares the ``alembic_version`` row
with :data:`syncer.archive.SCHEMA_HEAD` in one query and loads Alembic only
when they differ, to explain why.

SQLite transactions: the stdlib driver's own transaction handling is switched
off (``isolation_level = None``) and every transaction starts with an explicit
``BEGIN``, as the SQLAlchemy documentation recommends ("Serializable isolation /
Savepoints / Transactional DDL" for pysqlite). Write transactions use
``BEGIN IMMEDIATE`` so the write lock is taken up front and waits on the busy
timeout, rather than failing with SQLITE_BUSY when a read snapshot cannot be
upgraded; reads use a plain deferred ``BEGIN`` and do not block the writer (WAL).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.sql.schema import Table

from syncer.archive import SCHEMA_HEAD
from syncer.errors import ArchiveError, MigrationRequired

if TYPE_CHECKING:
    from typing import TypeAlias

    from alembic.config import Config
    from sqlalchemy.dialects import postgresql

    #: The dialect ``insert()`` constructs, which both offer ``on_conflict_do_nothing/update``.
    DialectInsert: TypeAlias = sqlite.Insert | postgresql.Insert

#: How long a SQLite connection waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Page size for new SQLite archives (see _configure_sqlite).
SQLITE_PAGE_SIZE = 16_384

#: Prepared statements the stdlib driver caches per SQLite connection (its default: 128).
#: None: each download batch has its own ``IN (...)`` lengths and multi-row
#: ``INSERT ... RETURNING``, so a cache fills with big statements used once -- about
#: 20 MB more resident memory by 50,000 messages (still 3 MB with a cache of 4). The
#: statements that do repeat cost tens of microseconds to prepare, nothing next to a batch.
SQLITE_STATEMENT_CACHE = 0

#: Execution option that marks an engine (or connection) as a writer.
_WRITE_OPTION = "syncer_write"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the database behind an engine can do, decided once from its dialect name.

    :ivar dialect: ``sqlite`` or ``postgresql``.
    :ivar insert: the dialect's ``insert()`` construct, which offers
        ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both.
    :ivar max_params: how many bound parameters one statement may carry safely;
        used to slice ``IN (...)`` lists.
    """

    dialect: str
    insert: Callable[[Table], DialectInsert]
    max_params: int

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"


def _normalise_url(url: str | URL) -> URL:
    """Accept the URL spellings people write and map them to the drivers we ship with.

    ``postgresql://`` (and ``postgres://``, as Heroku-style hosts print it)
    becomes ``postgresql+psycopg://``: psycopg 3 is the driver in our extras.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ArchiveError(
            f"Archive database URL {mask_url(parsed)!r} is not supported.",
            hint="Use sqlite:///path/to/archive.db or postgresql://user@host/dbname.",
        )
    return parsed


_USERINFO = re.compile(r"(^|[\s/])([^\s/:@]*):[^\s/@]*@")


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``, safe to print or log.

    A string SQLAlchemy cannot parse is masked textually (``user:secret@`` →
    ``user:***@``) rather than echoed.
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # e.g. a non-numeric port
        return _USERINFO.sub(r"\1\2:***@", url)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of an SQLite archive URL; None for PostgreSQL and in-memory databases.

    Why: an embedded archive needs no set-up -- the first ``syncer sync`` creates it --
    while a read command must not leave an empty file behind (the CLI checks first).
    """
    parsed = _normalise_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str | URL) -> Engine:
    """Create the engine for an archive database URL.

    SQLite: WAL journal, ``foreign_keys=ON``, 30 s busy timeout,
    ``synchronous=NORMAL`` and no statement cache (see
    :data:`SQLITE_STATEMENT_CACHE`) on every connection; the parent directory
    of the database file is created. PostgreSQL:
    ``postgresql://`` is rewritten to the psycopg 3 driver; connections are
    pinged before use.

    :raises ArchiveError: for a URL of another database.
    """
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_private_file(Path(database).expanduser())
        engine = create_engine(parsed, connect_args={"cached_statements": SQLITE_STATEMENT_CACHE})
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _create_private_file(path: Path) -> None:
    """Create the SQLite file 0600 (its new folders 0700) before SQLite does, whatever the
    umask: the archive holds everyone's mail. SQLite gives its -wal and -shm files the
    database file's mode. An existing file is left as it is."""
    missing = [p for p in path.parents if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for made in missing:
        os.chmod(made, 0o700)  # mkdir's mode is cut by the umask
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Takes effect only while the file is still empty (before WAL is switched on),
            # i.e. for new archives. Raw messages are BLOBs of 8 KB to megabytes: on 4 KB
            # pages each one is a long overflow chain; 16 KB pages cut the insert cost of
            # the hot path by about a fifth (tests/bench/bench_archive.py).
            cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writer = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are write transactions.

    On SQLite they begin with ``BEGIN IMMEDIATE``; elsewhere this changes nothing.
    """
    return engine.execution_options(**{_WRITE_OPTION: True})


def capabilities(engine: Engine) -> Capabilities:
    """The capability flags of ``engine``'s database."""
    name = engine.dialect.name
    if name == "sqlite":
        # SQLite before 3.32 allowed 999 host parameters; stay below that.
        return Capabilities(dialect=name, insert=sqlite.insert, max_params=900)
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only PostgreSQL archives pay for it

        return Capabilities(dialect=name, insert=postgresql.insert, max_params=30_000)
    raise ArchiveError(f"Database dialect {name!r} is not supported by the archive.")


# --------------------------------------------------------------------------- Alembic


def _script_location() -> str:
    # The migrations folder is the package syncer.archive.migrations, so this works
    # for an editable install and for a wheel alike.
    return str(importlib.resources.files("syncer.archive.migrations"))


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _as_engine(engine_or_url: Engine | str | URL) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(engine_or_url), True


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Migrate the archive schema up to ``revision`` (default: the newest)."""
    from alembic import command

    engine, owned = _as_engine(engine_or_url)
    try:
        with write_engine(engine).begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
    finally:
        if owned:
            engine.dispose()


def downgrade(engine_or_url: Engine | str | URL, revision: str) -> None:
    """Migrate the archive schema down to ``revision`` (``base`` drops every table)."""
    from alembic import command

    engine, owned = _as_engine(engine_or_url)
    try:
        with write_engine(engine).begin() as conn:
            command.downgrade(_alembic_config(conn), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision this syncer knows, as Alembic computes it from the scripts.

    :data:`syncer.archive.SCHEMA_HEAD` is the same value without loading Alembic
    (a unit test keeps the two equal).
    """
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the baseline always exists
        raise ArchiveError("No migration scripts found in syncer.archive.migrations.")
    return head


def ensure_at_head(engine: Engine) -> None:
    """Refuse to work on a schema other than the one this syncer was written for.

    The usual case -- the database is at :data:`~syncer.archive.SCHEMA_HEAD` -- costs
    one query; Alembic is loaded only to explain a mismatch.

    :raises MigrationRequired: when the database is behind (or ahead of) this syncer.
    """
    if _stored_revisions(engine) == [SCHEMA_HEAD]:
        return
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(_alembic_config())
    known = current is None or any(rev.revision == current for rev in script.walk_revisions())
    if not known:
        raise MigrationRequired(
            f"Archive schema is at {current}, which this syncer does not know "
            f"(it needs {head}); a newer syncer migrated this database.",
            hint="Upgrade syncer to the version that wrote this archive.",
        )
    raise MigrationRequired(
        f"Archive schema is at {current or 'nothing (empty database)'}, this syncer needs {head}.",
        hint="Run `syncer db upgrade`.",
    )


def _stored_revisions(engine: Engine) -> list[str] | None:
    """The rows of ``alembic_version``, or None when it cannot be read (no such table).

    Any failure is left to the Alembic path of :func:`ensure_at_head`, which
    reports it as before.
    """
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return [str(rev) for rev in rows]
    except SQLAlchemyError:
        return None

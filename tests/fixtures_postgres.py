"""Database fixtures: a real PostgreSQL for the session, a fresh database per test.

Why this plugin exists: the archive runs on SQLite and PostgreSQL, and every
archive test should run on both. Fixtures:

* ``postgres_server`` (session): a throw-away cluster (tests/servers/postgres.py).
  Missing binaries fail the tests, naming the Debian package ``postgresql``,
  unless ``SYNCER_SKIP_SERVER_TESTS=1`` (then they skip).
* ``pg_url`` (function): ``postgresql+psycopg://postgres@127.0.0.1:PORT/<uuid db>``,
  a new empty database, dropped afterwards.
* ``archive_url`` (function, params ``sqlite`` and ``postgresql``): an empty
  archive database URL; the ``postgresql`` case is marked ``integration``.
* ``archive_store`` (function): an :class:`ArchiveStore` opened (migrated) on
  ``archive_url``, closed afterwards.

At teardown every one of these asserts that no pooled connection is still
checked out (a Connection someone forgot to close), counted through
SQLAlchemy's pool events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool, QueuePool

from syncer.archive.store import ArchiveStore
from tests.servers.postgres import PostgresServer, PostgresUnavailable


class _CheckoutTracker:
    """Counts pooled connections checked out and not yet returned, across all engines."""

    def __init__(self) -> None:
        self.out: set[int] = set()

    def checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        self.out.add(id(record))

    def checkin(self, _dbapi: Any, record: Any) -> None:
        self.out.discard(id(record))

    def assert_none_out(self) -> None:
        leaked = len(self.out)
        self.out.clear()
        assert leaked == 0, (
            f"{leaked} pooled database connection(s) still checked out at the end of the test: "
            "a Connection was not closed."
        )


_tracker = _CheckoutTracker()
event.listen(Pool, "checkout", _tracker.checkout)
event.listen(Pool, "checkin", _tracker.checkin)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free loopback port, for the whole session."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        if os.environ.get("SYNCER_SKIP_SERVER_TESTS") == "1":
            pytest.skip(f"{exc} (SYNCER_SKIP_SERVER_TESTS=1)")
        pytest.fail(f"{exc} Or set SYNCER_SKIP_SERVER_TESTS=1 to skip these tests.")
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.exit(f"Could not start PostgreSQL for the tests: {exc}", returncode=3)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = postgres_server.create_database()
    _tracker.out.clear()
    try:
        yield postgres_server.url(name)
        _tracker.assert_none_out()
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty archive database: a SQLite file under tmp_path, or a PostgreSQL database."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_url")
        return
    _tracker.out.clear()
    yield f"sqlite:///{tmp_path / 'archive' / 'archive.db'}"
    _tracker.assert_none_out()


@pytest.fixture
def archive_store(archive_url: str) -> Iterator[ArchiveStore]:
    """An archive store (schema at head, blobs in the database) on ``archive_url``."""
    store = ArchiveStore.open(archive_url, migrate=True)
    try:
        yield store
        pool = store.engine.pool
        assert isinstance(pool, QueuePool)  # SQLite files and PostgreSQL alike
        assert pool.checkedout() == 0, "a Connection of the store was not closed"
    finally:
        store.close()

"""Engine set-up: SQLite pragmas on every connection, URL spellings, capability flags.

Why: WAL, foreign keys and the busy timeout are what make one SQLite file safe
for a writer and concurrent readers; a connection without them silently
loses those guarantees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from syncer.archive.blobs import DBBlobStore
from syncer.archive.engine import capabilities, make_engine, mask_url
from syncer.archive.store import ArchiveStore
from syncer.errors import ArchiveError


def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "archive.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        for _ in range(2):
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
                assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
                assert conn.execute(text("PRAGMA page_size")).scalar() == 16_384
        assert db.parent.is_dir()
        caps = capabilities(engine)
        assert caps.is_sqlite and caps.dialect == "sqlite"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["postgresql://u:secret@127.0.0.1:1/db", "postgres://u:secret@127.0.0.1:1/db"]
)
def test_postgresql_urls_use_psycopg_and_mask_the_password(url: str) -> None:
    engine = make_engine(url)  # does not connect
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert not capabilities(engine).is_sqlite
        store = ArchiveStore(engine, DBBlobStore())
        assert "secret" not in store.url
        assert store.url == "postgresql+psycopg://u:***@127.0.0.1:1/db"
    finally:
        engine.dispose()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ArchiveError, match="not supported"):
        make_engine("mysql://u:secret@localhost/db")


@pytest.mark.integration
def test_postgresql_connection(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@db.example/x", "postgresql://u:***@db.example/x"),
        ("sqlite:////var/lib/syncer/archive.db", "sqlite:////var/lib/syncer/archive.db"),
        ("not a url u:secret@host", "not a url u:***@host"),
        ("weird://u:se:cret@host:port:bad/x", "weird://u:***@host:port:bad/x"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked

"""The Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL.

Why: the migrations are the truth of the schema, and the store's statements are
built from the models; if the two drift apart, one database breaks. This is the
``alembic check`` of the CI, plus the upgrade → downgrade → upgrade round trip.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from syncer.archive.engine import (
    current_revision,
    downgrade,
    ensure_at_head,
    head_revision,
    make_engine,
    upgrade,
)
from syncer.archive.models import SEARCH_INDEX_TABLES, is_modelled, metadata
from syncer.archive.store import ArchiveStore
from syncer.errors import MigrationRequired


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": is_modelled}
        )
        return list(compare_metadata(context, metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"} - SEARCH_INDEX_TABLES


def test_upgrade_matches_models_and_round_trips(archive_url: str) -> None:
    engine = make_engine(archive_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert _diffs(engine) == []
        assert _tables(engine) == set(metadata.tables)

        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert _tables(engine) == set()

        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert _diffs(engine) == []
        ensure_at_head(engine)
    finally:
        engine.dispose()


def test_upgrade_accepts_a_url(archive_url: str) -> None:
    upgrade(archive_url)
    engine = make_engine(archive_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_empty_database_requires_upgrade(archive_url: str) -> None:
    engine = make_engine(archive_url)
    try:
        with pytest.raises(MigrationRequired) as info:
            ensure_at_head(engine)
    finally:
        engine.dispose()
    assert info.value.message == (
        f"Archive schema is at nothing (empty database), this syncer needs {head_revision()}."
    )
    assert info.value.hint == "Run `syncer db upgrade`."
    with pytest.raises(MigrationRequired):
        ArchiveStore.open(archive_url)


def test_unknown_revision_is_refused(archive_url: str) -> None:
    engine = make_engine(archive_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
        with pytest.raises(MigrationRequired, match="does not know"):
            ensure_at_head(engine)
    finally:
        engine.dispose()


def test_open_with_migrate_creates_the_schema(archive_url: str) -> None:
    with ArchiveStore.open(archive_url, migrate=True) as store:
        assert store.status().totals.messages == 0
    # And a second open needs no migration.
    ArchiveStore.open(archive_url).close()

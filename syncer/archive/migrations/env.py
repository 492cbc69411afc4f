"""Alembic environment for the archive: run migrations on a connection we are handed.

Why this file exists: ``syncer db upgrade`` and the tests drive Alembic from
code (``syncer.archive.engine.upgrade``) and pass an open connection in
``config.attributes["connection"]``, so migrations run inside the caller's
transaction with the same SQLite pragmas as the rest of syncer. Run from the
``alembic`` command line, the URL comes from ``sqlalchemy.url`` in the config.

``render_as_batch=True`` makes autogenerate emit batch operations, which
SQLite needs for any ALTER beyond adding a column.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from syncer.archive.engine import make_engine, write_engine
from syncer.archive.models import is_modelled, metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=is_modelled,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``) instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        render_as_batch=True,
        include_name=is_modelled,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("No connection given and no sqlalchemy.url set for the migrations.")
    engine = make_engine(url)
    try:
        with write_engine(engine).begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

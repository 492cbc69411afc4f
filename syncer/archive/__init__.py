"""The archive: SQL tables, blob storage and the store the pipeline writes through.

Why this package exists: everything that touches SQLAlchemy, Alembic or the
blob files lives here, behind :class:`syncer.archive.store.ArchiveStore`, which
takes and returns ``syncer.model`` values. Nothing here knows a mail protocol.

Modules: ``engine`` (engines, capability flags, Alembic helpers), ``models``
(the tables), ``blobs`` (zstd blobs in the database or on disk), ``ingest``
(hashing and header sniffing for the hot path), ``workers`` (the small thread
pool), ``leases``, ``store_base``/``store_admin``/``store`` (the store), ``reader`` (the
class of some of its mixins that ``syncer show`` opens).

Import the submodules directly; this package imports nothing so that
``import syncer.archive`` stays cheap for the CLI.
"""

from __future__ import annotations

#: The newest schema migration (``syncer/archive/migrations/versions``). The store compares the
#: database with it on every open without loading Alembic, which costs more than a
#: whole no-change sync's work; tests/unit/test_schema_head.py fails when a new
#: migration is added without updating it.
SCHEMA_HEAD = "0008"

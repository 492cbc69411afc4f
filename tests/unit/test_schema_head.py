"""``syncer.archive.SCHEMA_HEAD`` is Alembic's head, and the store opens without Alembic.

Why: the store checks the schema on every open against a constant, so that a
no-change sync does not pay for importing Alembic; the constant must follow the
migration scripts, or a new migration would be silently skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncer.archive import SCHEMA_HEAD
from syncer.archive.engine import ensure_at_head, head_revision, make_engine, upgrade


def test_schema_head_is_alembics_head() -> None:
    assert head_revision() == SCHEMA_HEAD, (
        "A migration was added: set syncer.archive.SCHEMA_HEAD to its revision."
    )


def test_ensure_at_head_accepts_a_current_archive(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        upgrade(engine)
        ensure_at_head(engine)
    finally:
        engine.dispose()


def test_opening_a_current_archive_loads_no_alembic_orm_or_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    code = (
        "import sys\n"
        "from syncer.archive.store import ArchiveStore\n"
        f"ArchiveStore.open({url!r}).close()\n"
        "heavy = ('alembic', 'sqlalchemy.orm', 'sqlalchemy.dialects.postgresql')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""

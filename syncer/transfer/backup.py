"""``syncer backup`` and ``syncer restore-archive``: a consistent copy of the whole archive.

Why it is built this way: the archive is a database plus, with
``blob_store = "fs:..."``, a folder of blob files, and a copy of the two taken
while syncs run must still agree. Blob files are content-addressed and never
change, and a sync writes (and fsyncs) a blob file *before* it commits the row
that points at it. So the backup snapshots the database first and then copies
exactly the blob files that snapshot references: every one of them exists
(retention deleting one in between is reported, never silently skipped), and
files added later are simply not part of this backup.

* SQLite: SQLite's online backup API copies the database page by page into
  ``PATH/archive.db``, one consistent snapshot even while others write.
* PostgreSQL: ``pg_dump -Fc`` (when it is installed; otherwise the error says
  what to run) into ``PATH/archive.pgdump``, inside a snapshot exported from a
  REPEATABLE READ transaction (``pg_export_snapshot``), which is also where the
  blob file list is read, so the dump and the files agree.
* Blob files go to ``PATH/blobs/ab/cd/<sha256>.zst``; ``PATH/backup.json``
  describes the backup (written last: a backup without it is incomplete).

``restore-archive PATH`` puts it back where the configuration says the
archive lives: the database (SQLite backup API the other way, or
``pg_restore --clean``) and the blob files into the configured on-disk store.
It refuses to overwrite an archive that holds messages unless forced.
``syncer verify`` then checks every blob.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from syncer.errors import ArchiveError, UsageError
from syncer.formats.files import private_dir, write_private

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore

__all__ = ["BackupSummary", "backup_archive", "restore_archive"]

log = structlog.get_logger(__name__)

MANIFEST = "backup.json"
SQLITE_FILE = "archive.db"
PG_FILE = "archive.pgdump"
BLOBS_DIR = "blobs"


@dataclass
class BackupSummary:
    """What a backup or restore copied."""

    path: str
    dialect: str
    database: str
    blob_files: int = 0
    missing: list[str] = field(default_factory=list)


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _libpq_url(url: str | URL) -> str:
    """The archive URL as libpq tools take it (no SQLAlchemy driver suffix)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _blob_file(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / f"{sha256}.zst"


def _copy_file(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(source, tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


#: ``progress(done, total)``: blob files handled of those to copy (backup and restore).
Progress = Callable[[int, int], None]


def _copy_blobs(
    shas: Sequence[str], src_root: Path | None, dest_root: Path, progress: Progress | None = None
) -> tuple[int, list[str]]:
    """Copy blob files ``src_root -> dest_root``; return (copied, missing SHA-256s)."""
    copied, missing = 0, []
    for done, sha in enumerate(shas, 1):
        if progress is not None:
            progress(done, len(shas))
        source = _blob_file(src_root, sha) if src_root is not None else None
        dest = _blob_file(dest_root, sha)
        if source is None or not source.exists():
            missing.append(sha)
            continue
        if dest.exists() and dest.stat().st_size == source.stat().st_size:
            continue
        _copy_file(source, dest)
        copied += 1
    return copied, missing


def _empty_dir(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} exists and is not an empty directory; back up into a new one.")
    private_dir(path)  # 0700 from the start: nothing inside is reachable by others meanwhile
    return path.resolve()


def _make_private(root: Path) -> None:
    """Every file of the backup 0600, every folder 0700, whatever the umask and the tools
    (SQLite's backup, pg_dump, copies) created them with."""
    for current, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(current, name), 0o700, follow_symlinks=False)
        for name in files:
            os.chmod(Path(current, name), 0o600, follow_symlinks=False)


def backup_archive(
    store: ArchiveStore, path: Path, *, progress: Progress | None = None
) -> BackupSummary:
    """Write a consistent snapshot of the archive behind ``store`` into directory ``path``.

    :param progress: told how the blob-file copy advances (the database is one step before).

    :raises UsageError: when ``path`` is not a new or empty directory.
    :raises ArchiveError: when pg_dump is missing or fails, or blob files are missing.
    """
    from syncer.archive.engine import current_revision
    from syncer.archive.store import ArchiveStore

    root = _empty_dir(path)
    fs_root = store.blob_root
    if store.dialect == "sqlite":
        database = SQLITE_FILE
        store.backup_sqlite(root / database)
        with ArchiveStore.open(f"sqlite:///{root / database}", threads=0) as snapshot:
            shas = list(snapshot.blob_files())
    else:
        database = PG_FILE
        shas = _pg_dump(store, root / database)
    copied, missing = _copy_blobs(shas, fs_root, root / BLOBS_DIR, progress) if shas else (0, [])
    summary = BackupSummary(str(root), store.dialect, database, copied, missing)
    if missing:
        raise ArchiveError(
            f"Backup in {root} is incomplete: {len(missing)} blob file(s) the database refers "
            f"to are missing from the blob store (first: {missing[0]}).",
            hint="Run `syncer verify` to list them; the backup has no backup.json.",
        )
    manifest = {
        "syncer_backup": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "dialect": store.dialect,
        "database": database,
        "schema": current_revision(store.engine),
        "blob_files": len(shas),
        "source": store.url,
    }
    _make_private(root)
    write_private(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    log.info("backup.completed", path=str(root), dialect=store.dialect, blob_files=len(shas))
    return summary


def _pg_dump(store: ArchiveStore, dest: Path) -> list[str]:
    from syncer.archive.models import blobs

    pg_dump = _find_tool("pg_dump")
    if pg_dump is None:
        raise ArchiveError(
            "pg_dump is not installed, so syncer cannot back up a PostgreSQL archive itself.",
            hint=(
                "Install the PostgreSQL client (Debian: postgresql-client) or run "
                "`pg_dump -Fc -f archive.pgdump DATABASE` and copy the blob directory afterwards."
            ),
        )
    engine = store.engine
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            result = subprocess.run(
                [pg_dump, "-Fc", f"--snapshot={snapshot}", "-f", str(dest), _libpq_url(engine.url)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise ArchiveError(f"pg_dump failed: {result.stderr.strip()[:500]}")
            query = blobs.select().with_only_columns(blobs.c.sha256).where(blobs.c.data.is_(None))
            return sorted(conn.execute(query).scalars())


def restore_archive(
    store_url: str,
    blob_store: str,
    path: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> BackupSummary:
    """Restore the backup in ``path`` into the archive at ``store_url`` / ``blob_store``.

    :raises UsageError: when ``path`` is no complete backup, the database kinds
        differ, or the archive holds messages and ``force`` is false.
    :raises ArchiveError: when copying or pg_restore fails.
    """
    root = path.resolve()
    manifest_path = root / MANIFEST
    if not manifest_path.exists():
        raise UsageError(f"{root} is not a complete syncer backup (it has no {MANIFEST}).")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    dialect = make_url(store_url).get_backend_name()
    if manifest["dialect"] != dialect:
        raise UsageError(
            f"{root} is a backup of a {manifest['dialect']} archive; the configured archive "
            f"is {dialect}.",
            hint="Point [archive] url at the same kind of database.",
        )
    shas = (
        sorted(p.name[:-4] for p in (root / BLOBS_DIR).rglob("*.zst"))
        if (root / BLOBS_DIR).exists()
        else []
    )
    if shas and not blob_store.startswith("fs:"):
        raise UsageError(
            f"{root} holds {len(shas)} blob file(s), but the configured archive keeps blobs "
            'in the database (blob_store = "db").',
            hint='Set [archive] blob_store = "fs:/path" to where the files should go.',
        )
    _refuse_nonempty(store_url, force)
    if dialect == "sqlite":
        database = make_url(store_url).database or ""
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(root / manifest["database"]) as source:
            target = sqlite3.connect(database)
            try:
                source.backup(target)
            finally:
                target.close()
    else:
        _pg_restore(store_url, root / manifest["database"])
    copied = 0
    if shas:
        dest_root = Path(blob_store[3:]).expanduser()
        copied, _missing = _copy_blobs(shas, root / BLOBS_DIR, dest_root, progress)
    log.info("backup.restored", path=str(root), dialect=dialect, blob_files=len(shas))
    return BackupSummary(str(root), dialect, manifest["database"], copied)


def _refuse_nonempty(store_url: str, force: bool) -> None:
    from syncer.archive.engine import make_engine
    from syncer.archive.models import messages

    if force:
        return
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "messages"):
                return
            count = conn.execute(
                messages.select().with_only_columns(messages.c.id).limit(1)
            ).first()
    finally:
        engine.dispose()
    if count is not None:
        raise UsageError(
            "The configured archive already holds messages; restoring would replace it.",
            hint="Restore into an empty archive, or add --force to replace this one.",
        )


def _pg_restore(store_url: str, dump: Path) -> None:
    pg_restore = _find_tool("pg_restore")
    if pg_restore is None:
        raise ArchiveError(
            "pg_restore is not installed, so syncer cannot restore a PostgreSQL archive.",
            hint=f"Install the PostgreSQL client, or run `pg_restore --clean -d DATABASE {dump}`.",
        )
    result = subprocess.run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "-d",
            _libpq_url(store_url),
            str(dump),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ArchiveError(f"pg_restore failed: {result.stderr.strip()[:500]}")

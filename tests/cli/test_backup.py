"""`syncer backup` then `syncer restore-archive` into an empty archive: the result passes
`syncer verify` and holds the same messages (SQLite with blobs in the database and on
disk; PostgreSQL through pg_dump/pg_restore).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from tests.cli.conftest import Syncer
from tests.mail_samples import mail, names
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _config(cli: Syncer, url: str, blob_store: str) -> None:
    cli.write_config(f'[archive]\nurl = "{url}"\nblob_store = "{blob_store}"\n')


def _fill(url: str, blob_store: str) -> set[str]:
    with ArchiveStore.open(url, blob_store, migrate=True) as store:
        store.ensure_account("work", "imap")
        batch = [RemoteMessage("INBOX", n, mail(name)) for n, name in enumerate(names(), 1)]
        store.archive_batch("work", "INBOX", 1, batch, None)
        return {sha for _, _, sha, _, _ in store.entries("work", "INBOX")}


def _shas(url: str, blob_store: str) -> set[str]:
    with ArchiveStore.open(url, blob_store) as store:
        assert not store.verify()
        return {sha for _, _, sha, _, _ in store.entries("work", "INBOX")}


@pytest.mark.parametrize("blob_store", ["db", "fs"])
def test_sqlite_backup_restores_into_an_archive_that_verifies(
    syncer_cli: Syncer, tmp_path: Path, blob_store: str
) -> None:
    spec = f"fs:{tmp_path / 'blobs'}" if blob_store == "fs" else "db"
    url = f"sqlite:///{tmp_path / 'live.db'}"
    shas = _fill(url, spec)
    _config(syncer_cli, url, spec)
    backed = syncer_cli("backup", str(tmp_path / "backup"), "--json")
    assert backed.exit_code == 0, backed.output
    manifest = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert manifest["dialect"] == "sqlite"
    assert manifest["blob_files"] == (len(shas) if blob_store == "fs" else 0)
    again = syncer_cli("backup", str(tmp_path / "backup"))
    assert again.exit_code == 2 and "not an empty directory" in again.output

    restored_spec = f"fs:{tmp_path / 'restored-blobs'}" if blob_store == "fs" else "db"
    restored_url = f"sqlite:///{tmp_path / 'restored' / 'archive.db'}"
    _config(syncer_cli, restored_url, restored_spec)
    result = syncer_cli("restore-archive", str(tmp_path / "backup"))
    assert result.exit_code == 0, result.output
    verify = syncer_cli("verify")
    assert verify.exit_code == 0, verify.output
    assert _shas(restored_url, restored_spec) == shas
    refused = syncer_cli("restore-archive", str(tmp_path / "backup"))
    assert refused.exit_code == 2 and "already holds messages" in refused.output
    assert syncer_cli("restore-archive", str(tmp_path / "backup"), "--force").exit_code == 0


def test_postgresql_backup_restores_with_pg_dump(
    syncer_cli: Syncer, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    source = postgres_server.create_database()
    target = postgres_server.create_database()
    try:
        spec = f"fs:{tmp_path / 'blobs'}"
        shas = _fill(postgres_server.url(source), spec)
        _config(syncer_cli, postgres_server.url(source), spec)
        backed = syncer_cli("backup", str(tmp_path / "backup"))
        assert backed.exit_code == 0, backed.output
        _config(syncer_cli, postgres_server.url(target), f"fs:{tmp_path / 'restored-blobs'}")
        result = syncer_cli("restore-archive", str(tmp_path / "backup"))
        assert result.exit_code == 0, result.output
        assert syncer_cli("verify").exit_code == 0
        assert _shas(postgres_server.url(target), f"fs:{tmp_path / 'restored-blobs'}") == shas
    finally:
        postgres_server.drop_database(source)
        postgres_server.drop_database(target)


def test_the_archive_and_its_backup_are_private_whatever_the_umask(
    syncer_cli: Syncer, tmp_path: Path
) -> None:
    # Issue 16 (Low): archive.db and backups were created 0644 under umask 022.
    import os

    url = f"sqlite:///{tmp_path / 'new' / 'live.db'}"
    old = os.umask(0o022)
    try:
        _config(syncer_cli, url, "db")
        assert syncer_cli("init").exit_code == 0
        _fill(url, "db")
        assert syncer_cli("backup", str(tmp_path / "backup")).exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    for path in (tmp_path / "new").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    backup = tmp_path / "backup"
    modes = {p: p.stat().st_mode & 0o777 for p in [backup, *backup.rglob("*")]}
    assert all(m == (0o700 if p.is_dir() else 0o600) for p, m in modes.items()), modes

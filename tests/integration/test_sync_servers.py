"""Sync against every real server in the suite: Dovecot, Cyrus (Debian's and upstream's
namespace defaults) and Courier. Full sync, a sync with nothing new, changes by another
client with exact counts, a UIDVALIDITY reset without a second download, and the defects
issue 20 found on Cyrus and Courier, each against the server that showed it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from syncer.sync.normalize import normalize_pending
from syncer.transfer.export import ExportOptions, export_archive
from tests.fixtures_servers import AnyServer
from tests.integration.test_sync_dovecot import ACCOUNT, World, _message
from tests.servers.courier import CourierServer
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import MailUser

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArchiveStore]:
    """SQLite only: the database dimension is covered against Dovecot (test_sync_dovecot);
    here the servers vary, and four servers times two databases would double the time."""
    store = ArchiveStore.open(f"sqlite:///{tmp_path / 'archive.db'}", migrate=True)
    yield store
    store.close()


@pytest.fixture
def world(any_server: AnyServer, any_user: MailUser, store: ArchiveStore) -> World:
    return World(any_server, any_user, store)


def _by_folder(world: World, summaries: list[Any]) -> dict[str, Any]:
    """Summaries keyed by personal name (``Archive/2024``), whatever the server's prefix."""
    return {world.server.personal_name(s.folder): s for s in summaries}


def test_full_sync_is_byte_exact_and_a_second_sync_does_no_work(world: World) -> None:
    user = world.user.name
    world.server.append(user, "INBOX", _message(1), ["\\Seen"])
    world.server.append(user, "INBOX", _message(2), ["\\Flagged", "$Forwarded"])
    world.server.append(user, "Archive/2024", _message(3), ["custom"])
    world.server.append(user, "Überweisungen & Co", _message(4))
    for n in range(5, 15):
        world.server.append(user, "INBOX", _message(n))

    spy, summaries = world.sync()
    assert sum(s.new for s in summaries) == 14
    assert len(spy.bodies) == 14
    world.assert_archive_equals_server()

    spy, summaries = world.sync()
    assert spy.bodies == []
    assert all(s.new == 0 and s.flags_changed == 0 and s.expunged == 0 for s in summaries)


def test_changes_by_another_client_have_exact_counts(world: World) -> None:
    """Courier gives a renamed folder a new UIDVALIDITY (issue 20 #6): its bodies are
    reused by header fingerprint, so there too only the 20 new messages are downloaded."""
    user = world.user.name
    uids = [world.server.append(user, "INBOX", _message(n)) for n in range(40)]
    world.server.append(user, "Old", _message(50))
    world.server.append(user, "Gone", _message(60))
    world.sync()

    for n in range(100, 120):
        world.server.append(user, "INBOX", _message(n))
    world.server.add_flags(user, "INBOX", uids[:20], ["\\Seen"])
    world.server.expunge(user, "INBOX", uids[30:40])
    world.server.create_folder(user, "Brand new")
    world.server.rename_folder(user, "Old", "Renamed")
    world.server.delete_folder(user, "Gone")

    spy, summaries = world.sync()
    inbox = _by_folder(world, summaries)["INBOX"]
    assert (inbox.new, inbox.flags_changed, inbox.expunged) == (20, 20, 10)
    # Issue 20 #10: folder creations, deletions and renames are in the summary. Courier
    # changes UIDVALIDITY on RENAME, so there a rename is a deletion plus a creation.
    events = {
        world.server.personal_name(s.folder): (
            s.change,
            s.renamed_from and world.server.personal_name(s.renamed_from),
        )
        for s in summaries
        if s.change
    }
    renamed: dict[str, tuple[str, str | None]]
    if isinstance(world.server, CourierServer):
        renamed = {"Old": ("deleted", None), "Renamed": ("created", None)}
    else:
        renamed = {"Renamed": ("renamed", "Old")}
    assert events == {"Brand new": ("created", None), "Gone": ("deleted", None), **renamed}
    assert len(spy.bodies) == 20, "only the 20 new messages are downloaded"
    world.assert_archive_equals_server()
    folders = {world.server.personal_name(k): v for k, v in world.store.folders(ACCOUNT).items()}
    assert folders["Gone"].deleted
    assert folders["Old"].deleted
    assert not folders["Brand new"].deleted
    assert not folders["Renamed"].deleted


def test_uidvalidity_reset_fetches_no_body_twice(world: World) -> None:
    user = world.user.name
    for n in range(12):
        world.server.append(user, "Box", _message(n), ["\\Seen"] if n % 2 else [])
    world.sync()
    world.server.reset_uidvalidity(user, "Box")
    spy, summaries = world.sync()
    assert spy.bodies == [], "every body is already archived"
    assert _by_folder(world, summaries)["Box"].reused == 12
    world.assert_archive_equals_server()


#: RFC 8474: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
OBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def test_cyrus_mailbox_ids_are_asked_alone_and_valid(
    cyrus_upstream: CyrusServer, store: ArchiveStore
) -> None:
    """Issue 20 #1: Cyrus 3.6 answers MAILBOXID asked with counters with garbage bytes,
    which failed most syncs or stored garbage ids. Every stored id must be what Cyrus says
    when asked MAILBOXID alone, and several syncs in a row must all succeed."""
    user = cyrus_upstream.add_user()
    try:
        for n in range(12):
            cyrus_upstream.append(user.name, f"Folder {n}", _message(n))
        world = World(cyrus_upstream, user, store)
        for _run in range(4):
            world.sync()
        with cyrus_upstream.session(user.name) as client:
            for record in world.store.folders(ACCOUNT).values():
                status = client.folder_status(record.name, [b"MAILBOXID"])
                (expected,) = status[b"MAILBOXID"]
                assert record.mailbox_id == expected.decode(), record.name
                assert record.mailbox_id is not None
                assert OBJECT_ID.fullmatch(record.mailbox_id)
    finally:
        cyrus_upstream.remove_user(user.name)


def test_entries_of_deleted_and_renamed_folders_are_gone(world: World) -> None:
    """Issue 20 #4: only the folder row was marked; its entries stayed live, so push
    re-created deleted folders and status over-counted."""
    user = world.user.name
    for n in range(3):
        world.server.append(user, "Old", _message(n))
        world.server.append(user, "Gone", _message(10 + n))
    world.sync()
    world.server.rename_folder(user, "Old", "Renamed")
    world.server.delete_folder(user, "Gone")
    world.sync()

    def live(folder: str) -> int:
        return sum(
            1 for r in world.store.entries(ACCOUNT, world.server.wire_name(folder)) if not r[4]
        )

    assert (live("Gone"), live("Old"), live("Renamed")) == (0, 0, 3)
    assert len(world.store.entries(ACCOUNT, world.server.wire_name("Gone"))) == 3, "kept, gone"


def test_a_deleted_folder_is_not_taken_for_a_new_one_with_its_uidvalidity(
    courier: CourierServer, store: ArchiveStore
) -> None:
    """Issue 20 #3: Courier (and Cyrus) use the creation second as UIDVALIDITY; a deleted
    folder was recorded as renamed into a new, unrelated folder with the same value."""
    user = courier.add_user()
    try:
        world = World(courier, user, store)
        for n in range(3):
            courier.append(user.name, "Gone", _message(n))
        world.sync()
        validity = courier.uidvalidity(user.name, "Gone")
        courier.delete_folder(user.name, "Gone")
        courier.append(user.name, "Fresh", _message(10))
        courier.reset_uidvalidity(user.name, "Fresh", new=validity)  # same creation second

        spy, _ = world.sync()
        folders = world.store.folders(ACCOUNT)
        gone = folders[courier.wire_name("Gone")]
        assert gone.deleted and gone.renamed_to is None
        assert spy.bodies == [(courier.wire_name("Fresh"), 1)]
        world.assert_archive_equals_server()
    finally:
        courier.remove_user(user.name)


def test_a_folder_pattern_that_matches_nothing_is_a_warning(
    courier: CourierServer, store: ArchiveStore
) -> None:
    """Issue 20 #5 (in part): a ``--folder`` pattern that matches nothing (here Courier's
    wire spelling ``INBOX.Archive.*``) used to pass in silence."""
    user = courier.add_user()
    try:
        courier.append(user.name, "Archive/2024", _message(1))
        world = World(courier, user, store)
        # Folders are matched by their shown names (Archive/2024): the wire spelling is the
        # pattern that matches nothing now, and says so.
        with structlog.testing.capture_logs() as logs:
            world.sync(only=("INBOX.Archive.*",), include=("*",))
        unmatched = [e for e in logs if e["event"] == "sync.folder_pattern.unmatched"]
        assert [e["pattern"] for e in unmatched] == ["INBOX.Archive.*"]
        with structlog.testing.capture_logs() as logs:
            world.sync(only=("Archive/*",))
        assert not [e for e in logs if e["event"] == "sync.folder_pattern.unmatched"]
    finally:
        courier.remove_user(user.name)


def test_a_courier_folder_that_lost_its_uid_database_does_not_multiply_entries(
    courier: CourierServer, store: ArchiveStore
) -> None:
    """Issue 20 #7: a Courier folder without ``courierimapuiddb`` gets a new UIDVALIDITY on
    every read-only run; each run superseded the entries and added a new generation (271
    entries and a warning per run). The first reset is an ordinary one; from the second
    with the same contents on, the live entries move to the new UIDVALIDITY, one warning
    says what happens and how to fix the server, and later runs say nothing more."""
    user = courier.add_user()
    try:
        world = World(courier, user, store)
        for n in range(5):
            courier.append(user.name, "Box", _message(n), ["\\Seen"] if n % 2 else [])
        world.sync()
        uiddb = courier.folder_path(user.name, "Box") / "courierimapuiddb"
        wire = courier.wire_name("Box")
        warnings: list[str] = []
        validities: set[int] = set()
        for _run in range(4):
            uiddb.unlink(missing_ok=True)  # lost, as on the server of the report
            time.sleep(1.05)  # Courier's new UIDVALIDITY is the current second
            with structlog.testing.capture_logs() as logs:
                spy, _ = world.sync()
            warnings += [e["event"] for e in logs if e["log_level"] == "warning"]
            assert spy.bodies == [], "every body is already archived"
            rows = world.store.entries(ACCOUNT, wire)
            validities.add(max(r[1] for r in rows))
        assert len(validities) == 4, "the server changed UIDVALIDITY on every run"
        rows = world.store.entries(ACCOUNT, wire)
        generations = sorted({r[1] for r in rows})
        assert len(generations) == 2, "one superseded generation (the first), the live one"
        assert len(rows) == 10
        assert warnings.count("folder.uidvalidity_unstable") == 1
        assert warnings.count("folder.uidvalidity_changed") == 1, warnings
        record = world.store.folders(ACCOUNT)[wire]
        assert record.cursor is not None
        live = [r for r in rows if r[1] == record.cursor.uidvalidity]
        assert len(live) == 5 and not any(r[4] for r in live)
    finally:
        courier.remove_user(user.name)


def _synced(store: ArchiveStore) -> set[str]:
    """Shown names of the folders that hold live entries."""
    return {
        r.display_name
        for r in store.folders(ACCOUNT).values()
        if any(not e[4] for e in store.entries(ACCOUNT, r.name))
    }


def test_folders_are_named_within_the_personal_namespace(
    any_server: AnyServer,
    any_user: MailUser,
    archive_url: str,
    archive_store: ArchiveStore,
    tmp_path: Path,
) -> None:
    """Issue 20 #5: on Courier and Debian's Cyrus (``INBOX.`` prefix, ``.`` between
    levels) ``--folder 'Archive/*'`` matched nothing, ``exclude = ["Trash"]`` did not
    exclude ``INBOX.Trash``, ``folder:Überweisungen`` found nothing and export wrote
    ``INBOX/Archive/...``. Every server now shows, matches, searches and exports the
    name within the personal namespace with ``/`` between levels; SQLite and PostgreSQL."""
    user, store = any_user.name, archive_store
    world = World(any_server, any_user, store)
    for n, folder in enumerate(["INBOX", "Archive/2024", "Archive/2023", "Trash", "Überweisungen"]):
        any_server.append(user, folder, _message(100 + n))
    any_server.append(user, "Überweisungen", _message(200))

    with structlog.testing.capture_logs() as logs:
        world.sync(only=("Archive/*",))
    assert not [e for e in logs if e["event"] == "sync.folder_pattern.unmatched"]
    assert _synced(store) == {"Archive/2024", "Archive/2023"}

    world.sync(exclude=("Trash",))
    assert _synced(store) == {"INBOX", "Archive/2024", "Archive/2023", "Überweisungen"}
    assert store.folders(ACCOUNT)[any_server.wire_name("Archive/2024")].display_name == (
        "Archive/2024"
    )

    normalize_pending(store, workers=1)
    hits = store.search("folder:Überweisungen")
    assert len(hits) == 2
    assert {f for h in hits for f in h.folders} == {"Überweisungen"}
    assert len(store.search("folder:Archive/2024")) == 1
    # The wire name keeps working where it is plain ASCII (``folder:INBOX.Trash`` style).
    assert len(store.search(f"folder:{any_server.wire_name('Archive/2024')}")) == 1

    out = tmp_path / "export"
    export_archive(store, ExportOptions("maildir", out))
    exported = {p.parent.relative_to(out / ACCOUNT).as_posix() for p in out.rglob("cur")}
    assert exported == {"INBOX", "Archive/2024", "Archive/2023", "Überweisungen"}

    config = tmp_path / "syncer.toml"
    config.write_text(f"[archive]\nurl = {json.dumps(archive_url)}\n", encoding="utf-8")
    status = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])
    assert status.exit_code == 0, status.output
    shown = {f["display_name"] for f in json.loads(status.stdout)["accounts"][ACCOUNT]["folders"]}
    assert {"Archive/2024", "Überweisungen"} <= shown
    assert not [name for name in shown if name.startswith("INBOX.")]
    human = CliRunner().invoke(main, ["--config", str(config), "status"], env={"COLUMNS": "200"})
    assert human.exit_code == 0, human.output
    assert "Archive/2024" in human.stdout and "INBOX.Archive" not in human.stdout
    text = CliRunner().invoke(main, ["--config", str(config), "show", str(hits[0].id)])
    assert text.exit_code == 0, text.output
    assert f"{ACCOUNT}/Überweisungen uid" in text.stdout

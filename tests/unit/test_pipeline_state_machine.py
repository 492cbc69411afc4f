"""The sync state machine, specified as properties over random server histories.

Another client appends, flags, expunges, renames folders and resets
UIDVALIDITY on an in-memory IMAP server (``MemorySource``, a real adapter);
syncer syncs now and then, sometimes crashing after a few batches. After every
completed sync the archive's live entries must equal the server exactly, with
nothing duplicated and nothing lost, whichever extensions the server offers.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syncer.archive.account import AccountArchive
from syncer.archive.engine import upgrade
from syncer.archive.store import ArchiveStore
from syncer.sources.memory import ALL_CAPABILITIES, BASIC_CAPABILITIES, MemorySource
from syncer.sync.folders import SyncOptions, sync_folders

FOLDERS = ["INBOX", "Archive/2024", "Sent"]
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Forwarded", "custom"]
ACCOUNT = "acct"

_template_dir = Path(tempfile.mkdtemp(prefix="syncer-sm-"))
_template: Path | None = None


def _fresh_store(dest: Path) -> ArchiveStore:
    """A migrated SQLite archive, copied from a template migrated once per session."""
    global _template
    if _template is None:
        _template = _template_dir / "template.db"
        upgrade(f"sqlite:///{_template}")
    shutil.copy(_template, dest)
    store = ArchiveStore.open(f"sqlite:///{dest}")
    store.ensure_account(ACCOUNT, "imap")
    return store


class Crash(Exception):
    """Stands in for SIGKILL: not a SyncerError, so nothing in syncer catches it."""


class CrashingSource:
    """Wraps a source and dies after ``batches`` fetch batches were handed out."""

    def __init__(self, inner: MemorySource, batches: int) -> None:
        self._inner = inner
        self._left = batches

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fetch_messages(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in self._inner.fetch_messages(*args, **kwargs):
            if self._left <= 0:
                raise Crash()
            self._left -= 1
            yield batch


def _body(n: int, size: int) -> bytes:
    return (
        f"Message-ID: <{n}@test>\r\nSubject: message {n}\r\n\r\n".encode() + b"x" * size + b"\r\n"
    )


class SyncMachine(RuleBasedStateMachine):
    capabilities = ALL_CAPABILITIES

    def __init__(self) -> None:
        super().__init__()
        self.server = MemorySource(self.capabilities)
        self.tmp = Path(tempfile.mkdtemp(prefix="syncer-sm-"))
        self.store = _fresh_store(self.tmp / "archive.db")
        self.counter = 0
        self.synced_once = False
        self.bodies_before = 0
        for name in FOLDERS[:2]:
            self.server.create_folder(name)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _options(self) -> SyncOptions:
        return SyncOptions(batch_messages=3, batch_bytes=4096, full_scan_days=7)

    @rule(
        folder=st.sampled_from(FOLDERS),
        flags=st.sets(st.sampled_from(FLAGS)),
        size=st.integers(0, 3000),
        n=st.integers(1, 4),
    )
    def append(self, folder: str, flags: set[str], size: int, n: int) -> None:
        for _ in range(n):
            self.counter += 1
            # Sometimes the same bytes again: stored once, listed twice.
            body = _body(self.counter if self.counter % 7 else 1, size)
            self.server.append(folder, body, flags)

    @rule(data=st.data(), flags=st.sets(st.sampled_from(FLAGS)))
    def change_flags(self, data: st.DataObject, flags: set[str]) -> None:
        folder = data.draw(st.sampled_from(self.server.folder_names()))
        uids = sorted(self.server.contents(folder))
        if uids:
            self.server.set_flags(folder, data.draw(st.sampled_from(uids)), flags)

    @rule(data=st.data())
    def expunge(self, data: st.DataObject) -> None:
        folder = data.draw(st.sampled_from(self.server.folder_names()))
        uids = sorted(self.server.contents(folder))
        if uids:
            self.server.remove(folder, data.draw(st.sampled_from(uids)))

    @rule(data=st.data())
    def reset_uidvalidity(self, data: st.DataObject) -> None:
        self.server.reset_uidvalidity(data.draw(st.sampled_from(self.server.folder_names())))

    @precondition(lambda self: "Sent" in self.server.folder_names())
    @rule()
    def rename_sent(self) -> None:
        self.server.rename_folder("Sent", "Sent Items")

    @rule()
    def sync(self) -> None:
        before = self.server.bodies_fetched
        not_archived = self._server_messages_not_archived()
        sync_folders(self.server, AccountArchive(self.store, ACCOUNT), self._options())
        self.synced_once = True
        self._assert_archive_equals_server()
        fetched = self.server.bodies_fetched - before
        assert fetched <= not_archived, "a body the archive already held was fetched again"

    @rule(batches=st.integers(0, 3))
    def crash_during_sync(self, batches: int) -> None:
        with contextlib.suppress(Crash):
            sync_folders(
                CrashingSource(self.server, batches),
                AccountArchive(self.store, ACCOUNT),
                self._options(),
            )

    @precondition(lambda self: self.synced_once)
    @rule()
    def resync_without_change_fetches_nothing(self) -> None:
        sync_folders(self.server, AccountArchive(self.store, ACCOUNT), self._options())
        before_bodies, before_selects = self.server.bodies_fetched, self.server.selects
        summaries = sync_folders(self.server, AccountArchive(self.store, ACCOUNT), self._options())
        assert self.server.bodies_fetched == before_bodies
        assert all(s.new == 0 and s.flags_changed == 0 and s.expunged == 0 for s in summaries)
        if "CONDSTORE" in self.capabilities:
            assert self.server.selects == before_selects, "an unchanged folder was selected"

    def _assert_archive_equals_server(self) -> None:
        for folder in self.server.folder_names():
            validity = self.server.uidvalidity(folder)
            expected = {
                uid: (hashlib.sha256(raw).hexdigest(), tuple(sorted(flags)))
                for uid, (raw, flags) in self.server.contents(folder).items()
            }
            rows = self.store.entries(ACCOUNT, folder)
            live = [r for r in rows if r[1] == validity and not r[4]]
            got = {uid: (sha, tuple(sorted(flags))) for uid, _v, sha, flags, _g in live}
            assert len(live) == len(got), f"duplicate live entries in {folder}"
            assert got == expected, f"archive differs from server in {folder}"
            for raw, _flags in self.server.contents(folder).values():
                assert self.store.get_raw(hashlib.sha256(raw).hexdigest()) == raw

    def _server_messages_not_archived(self) -> int:
        """How many bodies the next sync may fetch: messages with no live entry,
        except that after a UIDVALIDITY reset the bodies the folder already held
        must be recognised by fingerprint instead of fetched again."""
        known = self.store.folders(ACCOUNT)
        count = 0
        for folder in self.server.folder_names():
            validity = self.server.uidvalidity(folder)
            record = known.get(folder)
            reset = (
                record is not None
                and record.cursor is not None
                and (record.cursor.uidvalidity != validity)
            )
            rows = self.store.entries(ACCOUNT, folder)
            live = {uid for uid, v, _sha, _f, gone in rows if v == validity and not gone}
            held = {sha for _uid, _v, sha, _f, _g in rows}
            for uid, (raw, _flags) in self.server.contents(folder).items():
                if uid in live or (reset and hashlib.sha256(raw).hexdigest() in held):
                    continue
                count += 1
        return count

    @invariant()
    def archive_never_forgets(self) -> None:
        # Messages once archived stay archived (sync never deletes).
        count = self.store.count_entries(ACCOUNT)
        assert count >= getattr(self, "_last_count", 0)
        self._last_count = count


class SyncMachineWithoutExtensions(SyncMachine):
    capabilities = BASIC_CAPABILITIES


class SyncMachineWithOBJECTID(SyncMachine):
    capabilities = ALL_CAPABILITIES | {"OBJECTID"}


# Tens of seconds each: `make test` runs them, `make check` (the fast loop) does not.
TestSyncWithQRESYNC = pytest.mark.slow(SyncMachine.TestCase)
TestSyncWithOBJECTID = pytest.mark.slow(SyncMachineWithOBJECTID.TestCase)
TestSyncWithoutCONDSTORE = pytest.mark.slow(SyncMachineWithoutExtensions.TestCase)


@pytest.fixture(autouse=True, scope="module")
def _cleanup_template() -> Iterator[None]:
    yield
    shutil.rmtree(_template_dir, ignore_errors=True)

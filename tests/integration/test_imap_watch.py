"""The watching connection (:mod:`syncer.sources.imap.watch`) against a real Dovecot:
NOTIFY with and without CONDSTORE, IDLE on one folder, IDLE re-issued, and the
connection lost when the server kicks the session."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from syncer.errors import SourceUnavailable
from syncer.sources.imap.watch import IMAPWatcher, WatchEvent, wait_any
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import FULL_CAPABILITIES, DovecotServer, MailUser

pytestmark = pytest.mark.integration


def _watch(
    server: DovecotServer | CyrusServer, user: MailUser, **options: object
) -> Iterator[IMAPWatcher]:
    watcher = IMAPWatcher(
        server.host,
        server.ports.imaps,
        "tls",
        user.name,
        user.password,
        ca_file=str(server.tls.ca),
        timeout=10,
        account="mail",
        **options,  # type: ignore[arg-type]
    ).connect()
    try:
        yield watcher
    finally:
        watcher.close()


def _events_until(
    watcher: IMAPWatcher, wanted: WatchEvent, timeout: float = 15
) -> list[WatchEvent]:
    """Events until *wanted* arrives. They come within milliseconds; the generous
    ceiling is for a machine running the whole suite on both cores."""
    seen: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted} within {timeout} s; saw {seen}"
        seen += wait_any([watcher], 0.2)
    return seen


@pytest.fixture
def notify_watcher(dovecot: DovecotServer, dovecot_user: MailUser) -> Iterator[IMAPWatcher]:
    dovecot.create_folder(dovecot_user.name, "Sub")
    yield from _watch(dovecot, dovecot_user, idle_refresh=0.5)


def test_notify_names_each_folder_that_changed_and_survives_idle_refreshes(
    notify_watcher: IMAPWatcher, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    user = dovecot_user.name
    assert notify_watcher.mode == "notify" and notify_watcher.selected is None
    dovecot.append(user, "Sub", b"Subject: a\r\n\r\na\r\n")
    _events_until(notify_watcher, WatchEvent("Sub", "Sub", "status"))
    uid = dovecot.append(user, "INBOX", b"Subject: b\r\n\r\nb\r\n")
    _events_until(notify_watcher, WatchEvent("INBOX", "INBOX", "status"))
    time.sleep(1.2)
    wait_any([notify_watcher], 0)
    assert notify_watcher.refreshes >= 2, "IDLE re-issued every idle_refresh seconds"
    # A flag change is a STATUS (HIGHESTMODSEQ) since CONDSTORE is enabled.
    dovecot.add_flags(user, "INBOX", [uid], ["\\Flagged"])
    _events_until(notify_watcher, WatchEvent("INBOX", "INBOX", "status"))
    # (Dovecot 2.3 holds a RENAME back until the next change of the folder list.)
    dovecot.create_folder(user, "Created")
    _events_until(notify_watcher, WatchEvent(None, None, "folders"))


def test_without_condstore_notify_examines_inbox_to_see_its_flag_changes(
    make_dovecot: object, tmp_path: object
) -> None:
    caps = " ".join(c for c in FULL_CAPABILITIES.split() if c not in ("CONDSTORE", "QRESYNC"))
    server: DovecotServer = make_dovecot(capabilities=caps)  # type: ignore[operator]
    user = server.add_user()
    uid = server.append(user.name, "INBOX", b"Subject: a\r\n\r\na\r\n")
    for watcher in _watch(server, user):
        assert watcher.mode == "notify" and watcher.selected == "INBOX"
        server.add_flags(user.name, "INBOX", [uid], ["\\Flagged"])
        _events_until(watcher, WatchEvent("INBOX", "INBOX", "flags"))
        server.expunge(user.name, "INBOX", [uid])
        _events_until(watcher, WatchEvent("INBOX", "INBOX", "expunge"))


def test_idle_watches_one_folder_and_a_kicked_session_is_a_lost_connection(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    user = dovecot_user.name
    dovecot.create_folder(user, "Überweisungen")
    for watcher in _watch(dovecot, dovecot_user, notify=False, folder="Überweisungen"):
        assert watcher.mode == "idle"
        dovecot.append(user, "INBOX", b"Subject: not watched\r\n\r\nx\r\n")
        dovecot.append(user, "Überweisungen", b"Subject: a\r\n\r\na\r\n")
        seen = _events_until(watcher, WatchEvent("&ANw-berweisungen", "Überweisungen", "exists"))
        assert all(e.folder == "&ANw-berweisungen" for e in seen)
        dovecot.kick(user)
        with pytest.raises(SourceUnavailable, match=r"lost|said"):
            for _ in range(50):
                wait_any([watcher], 0.2)


def test_idle_on_an_inbox_prefixed_server_takes_and_reports_shown_names(
    cyrus_debian: CyrusServer,
) -> None:
    """Issue 20 #5: on Debian's Cyrus (``INBOX.`` prefix, ``.`` between levels) the
    folder to IDLE on is given by its shown name and events carry shown names, the
    names ``include``/``exclude`` match."""
    user = cyrus_debian.add_user()
    try:
        cyrus_debian.create_folder(user.name, "Archive/2024")
        # The test Cyrus runs without idled: it reports EXISTS when IDLE is re-issued.
        for watcher in _watch(
            cyrus_debian, user, notify=False, folder="Archive/2024", idle_refresh=0.5
        ):
            assert watcher.mode == "idle"
            assert watcher.selected == "INBOX.Archive.2024"
            cyrus_debian.append(user.name, "Archive/2024", b"Subject: c\r\n\r\nc\r\n")
            _events_until(
                watcher, WatchEvent("INBOX.Archive.2024", "Archive/2024", "exists"), timeout=10
            )
    finally:
        cyrus_debian.remove_user(user.name)

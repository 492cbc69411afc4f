"""IMAPSource against a real Dovecot, in the "full" and the "fallback" capability profile.

What every FolderSource must do (counts, byte-exact UID-ordered batches, flags,
UIDs, fingerprints, expunge) is in the contract suite, tests/contract/test_folders.py,
which runs on Dovecot and on MemorySource alike; this file keeps what is IMAP's own:
TLS and login, namespaces and globs, QRESYNC, the lean path against imapclient.

Every test runs twice through the ``imap_server`` fixture: once with CONDSTORE,
QRESYNC and LIST-STATUS advertised, once without, so both the extension paths
and the plain RFC 3501 paths meet a real server. The central check is that the
lean body download returns exactly the bytes imapclient's ``fetch()`` returns.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from syncer.errors import SourceAuthError, SourceError, SourceUnavailable
from syncer.model import RemoteMessage
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource
from tests.servers.dovecot import DovecotServer, MailUser

OpenSource = Callable[..., IMAPSource]


def is_full(server: DovecotServer) -> bool:
    return server.capabilities is None


@pytest.fixture
def open_source(imap_server: DovecotServer, mail_user: MailUser) -> Iterator[OpenSource]:
    """Opens IMAPSources for the test's user (plain IMAP unless told); closes them after."""
    opened: list[IMAPSource] = []

    def make(security: str = "plain", *, host: str | None = None, **options: object) -> IMAPSource:
        port = imap_server.ports.imaps if security == "tls" else imap_server.ports.imap
        options.setdefault("ca_file", str(imap_server.tls.ca))
        options.setdefault("password", mail_user.password)
        source = IMAPSource(
            IMAPSettings(
                host or imap_server.host,
                port,
                security,  # type: ignore[arg-type]
                mail_user.name,
                account="test",
                timeout=30,
                **options,  # type: ignore[arg-type]
            )
        )
        opened.append(source)
        return source.connect()

    yield make
    for source in opened:
        source.close()


def message(n: int, body: bytes = b"", subject: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <{n}.{uuid.uuid4().hex}@example.org>\r\n\r\n"
    ).encode() + (body or f"body {n}\r\n".encode())


def tricky_messages() -> list[bytes]:
    attachment = base64.encodebytes(random.Random(7).randbytes(3 * 1024 * 1024))
    return [
        message(1, b"line\r\n)\r\n{5}\r\nnot a literal\r\n* 3 FETCH (UID 9)\r\na1 OK done\r\n"),
        message(2, b"Gr\xfc\xdfe \xe2\x82\xac \xff\xfe 8-bit\r\n"),
        message(
            3,
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"--b--\r\n",
        ),
        b"Subject: header only, no blank line",
        b"Subject: bare LF\n\nline one\nline two\n",
        message(6, b")"),
        message(7, b"{0}\r\n"),
    ]


# -- connecting -----------------------------------------------------------------------------


class TestConnect:
    @pytest.mark.parametrize("security", ["tls", "starttls", "plain"])
    def test_security_modes(
        self, open_source: OpenSource, imap_server: DovecotServer, security: str
    ) -> None:
        source = open_source(security)
        caps = source.capabilities
        # Read after login: the pre-login list has neither NAMESPACE nor UIDPLUS.
        assert {"NAMESPACE", "UIDPLUS", "IMAP4REV1"} <= caps
        assert ("CONDSTORE" in caps) is is_full(imap_server)
        assert ("LIST-STATUS" in caps) is is_full(imap_server)
        assert source.list_folders()[0].name == "INBOX"

    def test_login_refused(self, open_source: OpenSource, imap_server: DovecotServer) -> None:
        with pytest.raises(SourceAuthError) as caught:
            open_source(password="wrong")
        assert caught.value.message == (
            f"Account 'test': IMAP login refused by localhost:{imap_server.ports.imap}."
        )
        assert caught.value.hint is not None
        assert caught.value.hint.startswith("Check the account's password source.")

    @pytest.mark.parametrize("security", ["tls", "starttls"])
    def test_certificate_for_another_name(self, open_source: OpenSource, security: str) -> None:
        # The certificate names "localhost" only; dialling the IP must not verify.
        with pytest.raises(SourceError) as caught:
            open_source(security, host="127.0.0.1")
        assert "certificate for 127.0.0.1 did not verify" in caught.value.message
        assert not caught.value.transient
        assert caught.value.hint is not None and "ca_file" in caught.value.hint

    def test_unknown_ca(self, open_source: OpenSource) -> None:
        with pytest.raises(SourceError, match="did not verify") as caught:
            open_source("tls", ca_file=None)
        assert not caught.value.transient

    def test_verification_can_be_switched_off(self, open_source: OpenSource) -> None:
        with capture_logs() as logs:
            source = open_source("tls", host="127.0.0.1", ca_file=None, tls_verify=False)
        assert "IMAP4REV1" in source.capabilities
        assert any(e["event"] == "imap.tls.unverified" for e in logs)

    def test_password_never_logged(self, open_source: OpenSource, mail_user: MailUser) -> None:
        with capture_logs() as logs:
            source = open_source()
            source.list_folders()
        assert mail_user.password not in repr(logs)
        assert any(e["event"] == "imap.connected" for e in logs)

    def test_lost_connection(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        source = open_source()
        source.select("INBOX")
        imap_server.kick(mail_user.name)
        time.sleep(0.2)
        with pytest.raises(SourceUnavailable):
            source.list_folders()
        source.close()  # never raises
        source.close()
        assert source.list_folders()[0].name == "INBOX"  # reconnects on next use


# -- folders --------------------------------------------------------------------------------


class TestListFolders:
    def test_personal_folders(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        user = mail_user.name
        for folder in ("Sent", "Archive/2024", "Überweisungen"):
            imap_server.create_folder(user, folder)
        imap_server.append(user, "INBOX", message(1))
        imap_server.append(user, "INBOX", message(2))
        folders = {f.name: f for f in open_source().list_folders()}
        assert set(folders) == {"INBOX", "Sent", "Archive", "Archive/2024", "&ANw-berweisungen"}
        assert folders["&ANw-berweisungen"].display_name == "Überweisungen"
        assert folders["Sent"].special_use == "\\Sent"
        assert folders["Archive"].selectable is False  # \Noselect parent on LAYOUT=fs
        assert folders["Archive"].uidvalidity is None
        inbox = folders["INBOX"]
        assert (inbox.messages, inbox.uidnext, inbox.delimiter) == (2, 3, "/")
        assert inbox.uidvalidity == imap_server.uidvalidity(user, "INBOX")
        assert inbox.namespace == "personal"
        assert (inbox.highestmodseq is not None) is is_full(imap_server)
        assert all(f.namespace == "personal" for f in folders.values())

    def test_namespaces(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        owner = imap_server.add_user()
        try:
            imap_server.create_folder(owner.name, "Project")
            shared = imap_server.grant(owner.name, "Project", mail_user.name)
            public = imap_server.create_public_folder(f"News-{uuid.uuid4().hex[:8]}")
            personal = {f.name for f in open_source().list_folders()}
            assert shared not in personal and public not in personal
            everything = {
                f.name: f
                for f in open_source(namespaces=("personal", "other", "shared")).list_folders()
            }
            assert everything[shared].namespace == "other"
            assert everything[shared].uidvalidity is not None
            assert everything[public].namespace == "shared"
            only_public = open_source(namespaces=("shared",)).list_folders()
            assert public in {f.name for f in only_public}
            assert {f.namespace for f in only_public} == {"shared"}
        finally:
            imap_server.remove_user(owner.name)

    def test_globs_match_display_names(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        for folder in ("Archive/2023", "Archive/2024", "Trash", "Überweisungen"):
            imap_server.create_folder(mail_user.name, folder)
        source = open_source(include=("Archive/*", "Über*", "INBOX"), exclude=("*/2023",))
        assert {f.display_name for f in source.list_folders()} == {
            "Archive/2024",
            "Überweisungen",
            "INBOX",
        }

    def test_subscribed_only(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        for folder in ("Kept", "Ignored"):
            imap_server.create_folder(mail_user.name, folder)
        with imap_server.session(mail_user.name) as client:
            client.subscribe_folder("Kept")
            client.subscribe_folder("INBOX")
        folders = open_source(subscribed_only=True).list_folders()
        assert {f.name for f in folders} == {"Kept", "INBOX"}
        assert all(f.uidvalidity is not None for f in folders)


# -- select ---------------------------------------------------------------------------------


class TestSelect:
    def test_qresync_delta(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        user = mail_user.name
        uids = [imap_server.append(user, "INBOX", message(n)) for n in range(4)]
        source = open_source()
        before = source.select("INBOX")
        imap_server.expunge(user, "INBOX", [uids[1]])
        imap_server.add_flags(user, "INBOX", [uids[2]], ["\\Flagged"])
        if not is_full(imap_server):
            assert before.highestmodseq is None
            after = source.select("INBOX", qresync=(before.uidvalidity, 1))
            assert not after.qresync and after.vanished == frozenset()
            return
        assert before.highestmodseq is not None
        after = source.select("INBOX", qresync=(before.uidvalidity, before.highestmodseq))
        assert after.qresync
        assert uids[1] in after.vanished
        assert [(f.uid, f.flags) for f in after.changed] == [(uids[2], ("\\Flagged",))]
        assert after.highestmodseq is not None and after.highestmodseq > before.highestmodseq
        # The delta is usable on a connection that already has a folder selected.
        again = source.select("INBOX", qresync=(before.uidvalidity, after.highestmodseq))
        assert again.qresync and again.changed == () and again.vanished == frozenset()

    def test_qresync_with_another_uidvalidity(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        imap_server.append(mail_user.name, "INBOX", message(1))
        source = open_source()
        first = source.select("INBOX")
        new = imap_server.reset_uidvalidity(mail_user.name, "INBOX")
        source = open_source()  # the reset kicked the old session
        after = source.select("INBOX", qresync=(first.uidvalidity, 1))
        assert after.uidvalidity == new and not after.qresync


# -- messages -------------------------------------------------------------------------------


def all_messages(source: IMAPSource, **kwargs: int) -> list[RemoteMessage]:
    return [m for batch in source.fetch_messages(**kwargs) for m in batch]  # type: ignore[arg-type]


class TestFetchMessages:
    def test_lean_path_equals_imapclient_fetch(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        user = mail_user.name
        when = datetime(2024, 3, 9, 8, 5, 7, tzinfo=timezone(timedelta(hours=-7)))
        for i, raw in enumerate(tricky_messages()):
            imap_server.append(
                user, "INBOX", raw, flags=["\\Answered"] if i % 2 else [], internaldate=when
            )
        source = open_source()
        source.select("INBOX")
        lean = all_messages(source, start_uid=1)
        with imap_server.session(user) as client:
            client.select_folder("INBOX", readonly=True)
            slow = client.fetch(
                client.search("ALL"), ["BODY.PEEK[]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
            )
        assert [m.uid for m in lean] == sorted(slow)
        for m in lean:
            assert m.raw == slow[m.uid][b"BODY[]"]
            assert m.size == len(m.raw) == slow[m.uid][b"RFC822.SIZE"]
            assert m.flags == tuple(
                sorted(f.decode() for f in slow[m.uid][b"FLAGS"] if f != b"\\Recent")
            )
            assert m.internaldate == when.astimezone(UTC)
            assert m.folder == "INBOX"
            assert (m.modseq is not None) is is_full(imap_server)
        assert len(lean[2].raw) > 4_000_000  # the 3 MB attachment, base64-encoded
        assert b")\r\n{5}\r\nnot a literal\r\n* 3 FETCH" in lean[0].raw
        assert b"\xff\xfe 8-bit" in lean[1].raw
        # Dovecot serves bare LF as CRLF; the archive keeps what the server sent.
        assert lean[4].raw == b"Subject: bare LF\r\n\r\nline one\r\nline two\r\n"

    def test_peek_never_sets_seen(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        uid = imap_server.append(mail_user.name, "INBOX", message(1))
        source = open_source()
        source.select("INBOX")
        assert all_messages(source, start_uid=1)[0].flags == ()
        source.fingerprints()
        assert imap_server.flags(mail_user.name, "INBOX")[uid] == frozenset()

    def test_long_uid_lists_are_compressed_and_sliced(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        imap_server.seed(mail_user.name, (("INBOX", message(n), (), None) for n in range(6000)))
        source = open_source()
        source.select("INBOX")
        wanted = list(range(1, 6001, 2))  # 3,000 single UIDs: no range to merge
        got = [m.uid for b in source.fetch_messages(wanted, batch_count=10_000) for m in b]
        assert got == wanted
        assert [f.uid for f in source.fingerprints(wanted)] == wanted
        assert source.uids() == list(range(1, 6001))

    def test_concurrent_expunge_is_skipped(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        uids = [imap_server.append(mail_user.name, "INBOX", message(n)) for n in range(3)]
        source = open_source()
        source.select("INBOX")
        imap_server.expunge(mail_user.name, "INBOX", [uids[1]])
        got = [m.uid for m in all_messages(source, start_uid=1)]
        assert got == [uids[0], uids[2]]

    def test_throttle(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        imap_server.append(mail_user.name, "INBOX", message(1, b"y" * 300_000 + b"\r\n"))
        source = open_source(max_bytes_per_second=1_000_000)
        source.select("INBOX")
        started = time.monotonic()
        assert len(all_messages(source, start_uid=1)) == 1
        assert time.monotonic() - started >= 0.25

    def test_imapclient_session_stays_usable(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        uid = imap_server.append(mail_user.name, "INBOX", message(1), flags=["\\Flagged"])
        source = open_source()
        source.select("INBOX")
        all_messages(source, start_uid=1)
        client = source.session.client  # the imapclient session underneath
        client.noop()
        flags = client.fetch([uid], ["FLAGS"])[uid][b"FLAGS"]
        assert set(flags) - {b"\\Recent"} == {b"\\Flagged"}


# -- flags, uids, fingerprints ---------------------------------------------------------------


def archive_header(raw: bytes) -> bytes:
    """What Dovecot's BODY[HEADER] is, in terms of the raw message BODY[] returned:
    up to and including the first empty line -- the first CRLF CRLF, or just the
    leading CRLF when the message starts with an empty line (no header at all) --
    and the whole message when there is no empty line."""
    if raw.startswith(b"\r\n"):
        return b"\r\n"
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 4]


class TestFingerprints:
    def test_header_hash_matches_the_raw_message(
        self, open_source: OpenSource, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        """Dovecot's BODY[HEADER] is the raw message up to and including the first CRLFCRLF."""
        messages = [
            *tricky_messages()[:2],
            b"Subject: header only, no blank line",
            b"Subject: bare LF\n\nbody\n",
            b"Subject: two blank lines\r\n\r\n\r\nbody\r\n\r\nmore\r\n",
            b"\r\nbody without any header\r\n",  # BODY[HEADER] is "\r\n"
            b"Subject: lone CR\rhere\r\n\r\nbody",  # Dovecot serves the CR as CRLF
        ]
        for n, raw in enumerate(messages):
            imap_server.append(mail_user.name, "INBOX", raw, flags=["\\Seen"] if n else [])
        source = open_source()
        source.select("INBOX")
        bodies = {m.uid: m for m in all_messages(source, start_uid=1)}
        fingerprints = source.fingerprints()
        assert [f.uid for f in fingerprints] == sorted(bodies)
        from syncer.archive.ingest import fingerprint  # what the archive stores

        for fp in fingerprints:
            fetched = bodies[fp.uid]
            assert fp.header_sha256 == hashlib.sha256(archive_header(fetched.raw)).hexdigest()
            assert fp.header_sha256 == fingerprint(fetched.raw).header_sha256
            assert fp.size == len(fetched.raw)
            assert (fp.internaldate, fp.flags, fp.modseq) == (
                fetched.internaldate,
                fetched.flags,
                fetched.modseq,
            )
        subset = source.fingerprints([2, 4, 77])
        assert [f.uid for f in subset] == [2, 4]

"""The Dovecot test harness does what the other integration tests rely on.

These tests pin down the server side of syncer's integration suite: which
ports speak TLS and how, that certificate checks really bite, which
capabilities each profile advertises, that the "another mail client" helpers
change the mailbox the way a real client would, and that the shared and
public namespaces are visible to the right users. If one of these fails, fix
the harness (tests/servers/) before suspecting syncer.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import poplib
import ssl
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests import fixtures_dovecot
from tests.servers.dovecot import (
    DEBIAN_PACKAGES,
    HIDDEN_IN_FALLBACK,
    DovecotNotInstalled,
    DovecotServer,
    MailUser,
    find_binaries,
)

MakeDovecot = Callable[..., DovecotServer]

#: OpenSSL's verdict when the certificate names "localhost" but the client dialled an IP.
NOT_VALID_FOR_IP = "mismatch, certificate is not valid for '127.0.0.1'"


def _message(n: int, subject: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <{n}.{time.monotonic_ns()}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


class TestMissingBinary:
    """Without Dovecot the server tests fail loudly, or skip only when asked to."""

    def test_error_names_the_debian_packages(self) -> None:
        with pytest.raises(DovecotNotInstalled, match=DEBIAN_PACKAGES):
            find_binaries(search_path="/nonexistent")

    def test_fixtures_fail_without_the_binary(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(fixtures_dovecot, "find_binaries", _not_installed)
        monkeypatch.delenv(fixtures_dovecot.SKIP_ENV, raising=False)
        with pytest.raises(pytest.fail.Exception, match="apt-get install dovecot-imapd"):
            fixtures_dovecot.require_dovecot()

    def test_fixtures_skip_when_told_to(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(fixtures_dovecot, "find_binaries", _not_installed)
        monkeypatch.setenv(fixtures_dovecot.SKIP_ENV, "1")
        with pytest.raises(pytest.skip.Exception):
            fixtures_dovecot.require_dovecot()


def _not_installed(search_path: str | None = None) -> tuple[str, str]:
    return find_binaries(search_path="/nonexistent")


@pytest.mark.integration
class TestTLS:
    """Every port speaks TLS with the test CA, and verification is not a formality."""

    def test_imaps_login_with_verification(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        ctx = dovecot.ssl_context()
        with imaplib.IMAP4_SSL("localhost", dovecot.ports.imaps, ssl_context=ctx) as imap:
            assert imap.login(dovecot_user.name, dovecot_user.password)[0] == "OK"
            assert isinstance(imap.sock, ssl.SSLSocket)
            assert imap.sock.version() in ("TLSv1.2", "TLSv1.3")

    def test_imap_starttls_login_with_verification(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        with imaplib.IMAP4("localhost", dovecot.ports.imap) as imap:
            assert "STARTTLS" in imap.capabilities
            assert imap.starttls(ssl_context=dovecot.ssl_context())[0] == "OK"
            assert imap.login(dovecot_user.name, dovecot_user.password)[0] == "OK"

    def test_pop3s_login_with_verification(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        pop = poplib.POP3_SSL("localhost", dovecot.ports.pop3s, context=dovecot.ssl_context())
        try:
            pop.user(dovecot_user.name)
            assert pop.pass_(dovecot_user.password).startswith(b"+OK")
            assert pop.stat() == (0, 0)
        finally:
            pop.quit()

    def test_pop3_stls_login_with_verification(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        pop = poplib.POP3("localhost", dovecot.ports.pop3)
        try:
            assert "STLS" in pop.capa()
            pop.stls(dovecot.ssl_context())
            pop.user(dovecot_user.name)
            assert pop.pass_(dovecot_user.password).startswith(b"+OK")
        finally:
            pop.quit()

    def test_plaintext_login_is_allowed_without_tls(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        # syncer must refuse this on its own (allow_insecure); the server will not.
        with imaplib.IMAP4("localhost", dovecot.ports.imap) as imap:
            assert imap.login(dovecot_user.name, dovecot_user.password)[0] == "OK"

    def test_helper_clients_use_every_tls_mode(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        for mode in ("none", "starttls", "tls"):
            client = dovecot.imap_client(dovecot_user.name, tls=mode)
            try:
                assert client.noop()
            finally:
                client.logout()

    @pytest.mark.parametrize("port_name", ["imaps", "pop3s"])
    def test_implicit_tls_to_an_ip_address_fails_hostname_check(
        self, dovecot: DovecotServer, port_name: str
    ) -> None:
        port = getattr(dovecot.ports, port_name)
        with pytest.raises(ssl.SSLCertVerificationError, match=NOT_VALID_FOR_IP):
            if port_name == "imaps":
                imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=dovecot.ssl_context())
            else:
                poplib.POP3_SSL("127.0.0.1", port, context=dovecot.ssl_context())

    def test_starttls_to_an_ip_address_fails_hostname_check(self, dovecot: DovecotServer) -> None:
        imap = imaplib.IMAP4("127.0.0.1", dovecot.ports.imap)
        try:
            with pytest.raises(ssl.SSLCertVerificationError, match=NOT_VALID_FOR_IP):
                imap.starttls(ssl_context=dovecot.ssl_context())
        finally:
            with contextlib.suppress(OSError):  # the failed handshake closed the socket
                imap.shutdown()

    def test_system_trust_store_rejects_the_test_ca(self, dovecot: DovecotServer) -> None:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            imaplib.IMAP4_SSL(
                "localhost", dovecot.ports.imaps, ssl_context=ssl.create_default_context()
            )

    def test_tls_below_1_2_is_refused(self, dovecot: DovecotServer) -> None:
        ctx = dovecot.ssl_context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError):
            imaplib.IMAP4_SSL("localhost", dovecot.ports.imaps, ssl_context=ctx)


@pytest.mark.integration
class TestCapabilityProfiles:
    def test_full_server_advertises_the_sync_extensions(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        client = dovecot.imap_client(dovecot_user.name)
        try:
            caps = set(client.capabilities())
        finally:
            client.logout()
        assert {b"CONDSTORE", b"QRESYNC", b"LIST-STATUS", b"UIDPLUS", b"MOVE"} <= caps
        assert {b"SPECIAL-USE", b"NAMESPACE", b"ACL"} <= caps

    def test_fallback_server_hides_them(self, dovecot_fallback: DovecotServer) -> None:
        user = dovecot_fallback.add_user()
        try:
            client = dovecot_fallback.imap_client(user.name)
            try:
                caps = {c.decode() for c in client.capabilities()}
            finally:
                client.logout()
        finally:
            dovecot_fallback.remove_user(user.name)
        assert caps.isdisjoint(HIDDEN_IN_FALLBACK)
        assert {"UIDPLUS", "MOVE", "IDLE", "NAMESPACE", "SPECIAL-USE"} <= caps

    def test_imap_server_runs_each_test_against_both(
        self, imap_server: DovecotServer, mail_user: MailUser, request: pytest.FixtureRequest
    ) -> None:
        client = imap_server.imap_client(mail_user.name)
        try:
            has_condstore = client.has_capability("CONDSTORE")
        finally:
            client.logout()
        assert has_condstore == (request.node.callspec.params["imap_server"] == "full")

    def test_apop_can_be_offered(self, make_dovecot: MakeDovecot) -> None:
        server = make_dovecot(apop=True)
        user = server.add_user()
        pop = poplib.POP3("localhost", server.ports.pop3)
        try:
            assert b"<" in pop.getwelcome()  # the APOP timestamp (RFC 1939 section 7)
            assert pop.apop(user.name, user.password).startswith(b"+OK")
        finally:
            pop.quit()


@pytest.mark.integration
class TestUsers:
    def test_each_test_gets_an_empty_mailbox(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        # Public folders (Public/...) are shared by every user on the server, so other
        # tests' ones may be listed; the user's own namespace must be empty.
        own = [f for f in imap_server.folders(mail_user.name) if f.split("/")[0] != "Public"]
        assert own == ["INBOX"]
        assert imap_server.uids(mail_user.name, "INBOX") == []

    def test_users_added_live_can_log_in_at_once(self, dovecot: DovecotServer) -> None:
        users = [dovecot.add_user() for _ in range(3)]
        try:
            for user in users:
                dovecot.imap_client(user.name).logout()
        finally:
            for user in users:
                dovecot.remove_user(user.name)

    def test_removed_users_lose_their_mail(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        user = dovecot.add_user()
        dovecot.append(user.name, "INBOX", _message(1))
        dovecot.remove_user(user.name)
        assert not dovecot.home(user.name).exists()


@pytest.mark.integration
class TestMailboxHelpers:
    """The helpers change mail the way another client would, visibly over IMAP."""

    def test_append_returns_the_uid_and_keeps_bytes_flags_and_date(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
        raw = _message(1)
        uid = imap_server.append(mail_user.name, "Work", raw, ["\\Flagged", "$Todo"], when)
        assert imap_server.uids(mail_user.name, "Work") == [uid]
        assert imap_server.fetch_raw(mail_user.name, "Work", uid) == raw
        assert imap_server.flags(mail_user.name, "Work") == {uid: {"\\Flagged", "$Todo"}}
        client = imap_server.imap_client(mail_user.name)
        try:
            client.select_folder("Work", readonly=True)
            internal = client.fetch([uid], ["INTERNALDATE"])[uid][b"INTERNALDATE"]
        finally:
            client.logout()
        assert internal.astimezone(UTC) == when

    def test_flag_changes(self, imap_server: DovecotServer, mail_user: MailUser) -> None:
        name = mail_user.name
        uids = [imap_server.append(name, "INBOX", _message(n)) for n in range(3)]
        imap_server.set_flags(name, "INBOX", uids, ["\\Seen", "$A"])
        imap_server.add_flags(name, "INBOX", uids[:1], ["\\Answered"])
        imap_server.remove_flags(name, "INBOX", uids[2:], ["$A"])
        assert imap_server.flags(name, "INBOX") == {
            uids[0]: {"\\Seen", "$A", "\\Answered"},
            uids[1]: {"\\Seen", "$A"},
            uids[2]: {"\\Seen"},
        }

    def test_expunge_removes_exactly_the_given_uids(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        name = mail_user.name
        uids = [imap_server.append(name, "INBOX", _message(n)) for n in range(4)]
        imap_server.add_flags(name, "INBOX", [uids[3]], ["\\Deleted"])
        imap_server.expunge(name, "INBOX", [uids[0], uids[2]])
        # UID EXPUNGE leaves other \Deleted messages alone (RFC 4315).
        assert imap_server.uids(name, "INBOX") == [uids[1], uids[3]]

    def test_folder_lifecycle(self, imap_server: DovecotServer, mail_user: MailUser) -> None:
        name = mail_user.name
        imap_server.create_folder(name, "Projects/2024.Q1")  # dots are fine with LAYOUT=fs
        uid = imap_server.append(name, "Projects/2024.Q1", _message(1))
        imap_server.rename_folder(name, "Projects/2024.Q1", "Done")
        assert "Done" in imap_server.folders(name)
        assert imap_server.uids(name, "Done") == [uid]
        imap_server.delete_folder(name, "Done")
        assert "Done" not in imap_server.folders(name)

    def test_special_use_shows_once_the_folder_exists(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        for folder in ("Sent", "Archive", "Trash", "Drafts"):
            dovecot.create_folder(dovecot_user.name, folder)
        client = dovecot.imap_client(dovecot_user.name)
        try:
            listed = {name: set(flags) for flags, _sep, name in client.list_folders()}
        finally:
            client.logout()
        for folder in ("Sent", "Archive", "Trash", "Drafts"):
            assert f"\\{folder}".encode() in listed[folder]

    @pytest.mark.parametrize("renumber", [False, True], ids=["keep-uids", "renumber"])
    def test_uidvalidity_reset_keeps_the_messages(
        self, imap_server: DovecotServer, mail_user: MailUser, renumber: bool
    ) -> None:
        name = mail_user.name
        uids = [imap_server.append(name, "INBOX", _message(n)) for n in range(3)]
        imap_server.expunge(name, "INBOX", [uids[0]])
        bodies = [imap_server.fetch_raw(name, "INBOX", u) for u in uids[1:]]
        old = imap_server.uidvalidity(name, "INBOX")
        new = imap_server.reset_uidvalidity(name, "INBOX", renumber=renumber)
        assert new != old
        assert imap_server.uidvalidity(name, "INBOX") == new
        after = imap_server.uids(name, "INBOX")
        assert after == ([1, 2] if renumber else uids[1:])
        assert [imap_server.fetch_raw(name, "INBOX", u) for u in after] == bodies

    def test_kick_disconnects_open_sessions(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        client = imap_server.imap_client(mail_user.name)
        client.select_folder("INBOX")
        imap_server.kick(mail_user.name)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            client.noop()
            client.noop()


@pytest.mark.integration
class TestSeeding:
    def test_seed_keeps_order_flags_keywords_and_dates(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        name = mail_user.name
        base = datetime(2020, 1, 1, tzinfo=UTC)
        flag_sets = [("\\Seen",), ("\\Flagged", "$work"), (), ("\\Answered", "\\Seen", "$x")]
        messages = [
            ("Archive/2020", _message(n), flag_sets[n % 4], base + timedelta(hours=n))
            for n in range(20)
        ]
        counts = imap_server.seed(name, messages)
        assert counts == {"Archive/2020": 20}
        uids = imap_server.uids(name, "Archive/2020")
        assert uids == list(range(1, 21))
        assert [imap_server.fetch_raw(name, "Archive/2020", u) for u in (1, 20)] == [
            messages[0][1],
            messages[19][1],
        ]
        flags = imap_server.flags(name, "Archive/2020")
        assert [flags[u] for u in uids[:4]] == [set(f) for f in flag_sets]
        client = imap_server.imap_client(name)
        try:
            client.select_folder("Archive/2020", readonly=True)
            dates = client.fetch([1, 20], ["INTERNALDATE"])
        finally:
            client.logout()
        assert dates[20][b"INTERNALDATE"].astimezone(UTC) == base + timedelta(hours=19)

    def test_seed_after_append_continues_the_uids(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        name = dovecot_user.name
        first = dovecot.append(name, "INBOX", _message(0), ["$old"])
        dovecot.seed(name, [("INBOX", _message(n), ("$new",), None) for n in (1, 2)])
        dovecot.seed(name, [("INBOX", _message(3), (), None)])
        assert dovecot.uids(name, "INBOX") == [first, first + 1, first + 2, first + 3]
        assert dovecot.flags(name, "INBOX")[first + 1] == {"$new"}
        assert dovecot.flags(name, "INBOX")[first] == {"$old"}

    @pytest.mark.slow
    def test_ten_thousand_messages_seed_in_one_call(
        self, dovecot: DovecotServer, dovecot_user: MailUser
    ) -> None:
        # How long it takes is the benchmarks' business (no timings in the suite); this
        # checks that one seed call delivers every message with its flags.
        dovecot.seed(
            dovecot_user.name,
            (("INBOX", _message(n), ("\\Seen",) if n % 2 else (), None) for n in range(10_000)),
        )
        uids = dovecot.uids(dovecot_user.name, "INBOX")
        assert len(uids) == 10_000
        seen = dovecot.flags(dovecot_user.name, "INBOX")
        assert sum("\\Seen" in flags for flags in seen.values()) == 5_000


@pytest.mark.integration
class TestNamespaces:
    def test_namespace_reports_personal_shared_and_public(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        client = imap_server.imap_client(mail_user.name)
        try:
            ns = client.namespace()
        finally:
            client.logout()
        assert ns.personal == (("", "/"),)
        assert ns.other == (("shared/", "/"),)
        assert ns.shared == (("Public/", "/"),)

    def test_granted_folder_shows_up_under_shared(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        owner = imap_server.add_user()
        try:
            uid = imap_server.append(owner.name, "Team/Plans", _message(1))
            imap_server.append(owner.name, "Private", _message(2))
            assert not any(f.startswith("shared/") for f in imap_server.folders(mail_user.name))

            shared = imap_server.grant(owner.name, "Team/Plans", mail_user.name)

            assert shared == f"shared/{owner.name}/Team/Plans"
            folders = imap_server.folders(mail_user.name)
            assert shared in folders
            assert f"shared/{owner.name}/Private" not in folders
            assert imap_server.fetch_raw(mail_user.name, shared, uid) == imap_server.fetch_raw(
                owner.name, "Team/Plans", uid
            )
        finally:
            imap_server.remove_user(owner.name)

    def test_public_folder_is_visible_to_everyone(
        self, imap_server: DovecotServer, mail_user: MailUser
    ) -> None:
        raw = _message(1, "announcement")
        folder = imap_server.create_public_folder(
            f"News-{mail_user.name}", [(raw, ["\\Flagged"], None)]
        )
        assert folder == f"Public/News-{mail_user.name}"
        assert folder in imap_server.folders(mail_user.name)
        assert imap_server.uids(mail_user.name, folder) == [1]
        assert imap_server.fetch_raw(mail_user.name, folder, 1) == raw
        assert imap_server.flags(mail_user.name, folder) == {1: {"\\Flagged"}}


@pytest.mark.integration
def test_stop_leaves_no_process_behind(make_dovecot: MakeDovecot) -> None:
    server = make_dovecot()
    pid = server.pid
    assert pid is not None
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    server.stop()  # twice is fine

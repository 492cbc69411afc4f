"""POP3 accounts synced against a real Dovecot, into SQLite and PostgreSQL.

Each test runs ``syncer.sync.runner.sync_account`` -- lease, ``sync_runs`` record,
retries, summary -- the way ``syncer sync`` does, on pop3s (995-style implicit
TLS) or STLS, and looks at both places afterwards: what the archive holds
(byte for byte) and what the server still has (through IMAP, as another
client would see it).

Faults come from proxies in front of the plain POP3 port: one that cuts the
connection in the middle of a RETR, one that removes a line from one RETR
answer (a server that truncates a message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from structlog.testing import capture_logs

from syncer.archive.models import blobs, pop3_seen
from syncer.archive.store import ArchiveStore
from syncer.config.schema import AccountConfig, Config, parse_config
from syncer.sync.runner import check_accounts, sync_account
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.proxy import CuttingProxy, TripwireProxy

pytestmark = pytest.mark.integration

PASSWORD_ENV = "TEST_POP3_PASSWORD"
DELETE_NOW = {"leave_on_server": False, "delete_after_archive": True}


def message(n: int, body_lines: int = 4, line: bytes = b"0123456789" * 7) -> bytes:
    head = f"From: a{n}@example.com\r\nMessage-ID: <pop{n}@example.com>\r\nSubject: n{n}\r\n\r\n"
    return head.encode() + (line + b"\r\n") * body_lines


#: Messages a careless client gets wrong: dot-stuffing, lines beyond poplib's 2,048
#: bytes, 8-bit bytes, no final line break, and one large enough for several reads.
AWKWARD = [
    b"Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\nend\r\n",
    b"Subject: long line\r\n\r\n" + b"y" * 70_000 + b"\r\n",
    "Subject: 8bit\r\n\r\nGrüße aus Köln, 東京\r\n".encode(),
    b"Subject: no line end\r\n\r\nlast line without CRLF",
    b"Subject: big\r\n\r\n"
    + b"base64base64base64base64base64base64base64base64base64base64\r\n" * 40_000,
]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch, dovecot_user: MailUser) -> str:
    monkeypatch.setenv(PASSWORD_ENV, dovecot_user.password)
    return dovecot_user.password


def config_for(server: DovecotServer, user: MailUser, **keys: Any) -> Config:
    fields = {
        "name": "pop",
        "protocol": "pop3",
        "host": server.host,
        "port": server.ports.pop3s,
        "security": "tls",
        "ca_file": str(server.tls.ca),
        "username": user.name,
        "password_env": PASSWORD_ENV,
        "retries": 0,
        **keys,
    }
    return parse_config({"accounts": [fields]})


def account_for(server: DovecotServer, user: MailUser, **keys: Any) -> AccountConfig:
    return config_for(server, user, **keys).accounts[0]


def plain_via(port: int) -> dict[str, Any]:
    """Keys for an account that reaches Dovecot's plain POP3 port through a proxy."""
    return {"host": "127.0.0.1", "port": port, "security": "plain", "allow_insecure": True}


def on_server(server: DovecotServer, user: MailUser) -> list[bytes]:
    """What the server's INBOX holds now, read over IMAP as another client would."""
    return sorted(
        server.fetch_raw(user.name, "INBOX", uid) for uid in server.uids(user.name, "INBOX")
    )


def count_on_server(server: DovecotServer, user: MailUser) -> int:
    """How many messages the server's INBOX holds, asked without logging in.

    (After a refused login Dovecot delays the next login from the same address.)
    """
    out = server.doveadm("mailbox", "status", "-u", user.name, "-t", "messages", "INBOX")
    return int(out.split("=")[-1])


def in_archive(store: ArchiveStore, account: str = "pop") -> list[bytes]:
    return sorted(store.get_raw(sha) for _u, _v, sha, _f, _g in store.entries(account, "INBOX"))


@pytest.fixture(params=["pop3s", "stls"])
def secured(request: pytest.FixtureRequest, dovecot: DovecotServer) -> dict[str, Any]:
    if request.param == "pop3s":
        return {"port": dovecot.ports.pop3s, "security": "tls"}
    return {"port": dovecot.ports.pop3, "security": "starttls"}


def test_first_sync_is_byte_exact_the_second_retrieves_nothing_the_third_gets_new_mail(
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    password: str,
    archive_store: ArchiveStore,
    secured: dict[str, Any],
) -> None:
    sent = [*AWKWARD, *(message(n) for n in range(20))]
    for raw in sent:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    account = account_for(dovecot, dovecot_user, **secured)

    with capture_logs() as logs:
        first = sync_account(account, archive_store)
    assert first.ok, first.error
    assert [(f.folder, f.new) for f in first.folders] == [("INBOX", len(sent))]
    assert in_archive(archive_store) == sorted(sent), "archived exactly as stored"
    (connected,) = [e for e in logs if e["event"] == "pop3.connected"]
    assert {"UIDL", "TOP"} <= set(connected["capabilities"])
    assert password not in repr(logs)

    with capture_logs() as logs:
        second = sync_account(account, archive_store)
    assert second.ok and second.new == 0
    assert not [e for e in logs if e["event"] == "pop3.retr"], "nothing is retrieved again"

    dovecot.append(dovecot_user.name, "INBOX", late := message(99))
    third = sync_account(account, archive_store)
    assert third.ok and third.new == 1 and third.bytes == len(late)
    assert archive_store.count_entries("pop") == len(sent) + 1
    assert on_server(dovecot, dovecot_user) == sorted([*sent, late]), "left on the server"
    assert [r.status for r in archive_store.runs("pop")] == ["ok", "ok", "ok"]


def test_delete_after_archive_removes_exactly_the_verified_archived_messages(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    old = [message(n) for n in range(3)]
    for raw in old:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    assert sync_account(account_for(dovecot, dovecot_user), archive_store).ok
    # One archived copy goes bad: that message must stay on the server.
    damaged = hashlib.sha256(old[1]).hexdigest()
    with archive_store.engine.begin() as conn:
        conn.execute(update(blobs).where(blobs.c.sha256 == damaged).values(data=b"garbage"))
    new = [message(n) for n in range(10, 12)]
    for raw in new:
        dovecot.append(dovecot_user.name, "INBOX", raw)

    with capture_logs() as logs:
        result = sync_account(account_for(dovecot, dovecot_user, **DELETE_NOW), archive_store)

    assert on_server(dovecot, dovecot_user) == [old[1]]
    assert not result.ok and result.error is not None
    assert "is left on the server: its archive copy does not verify" in result.error
    assert result.new == 2 and result.folders[0].expunged == 4
    assert len([e for e in logs if e["event"] == "pop3.dele"]) == 4
    (quit_event,) = [e for e in logs if e["event"] == "pop3.quit"]
    assert quit_event["deleted"] == 4
    deleted = {u for u, r in archive_store.pop3_seen("pop").items() if r.deleted_at is not None}
    assert len(deleted) == 4 and len(archive_store.pop3_seen("pop")) == 5


def test_delete_after_days_removes_only_messages_archived_long_enough_ago(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    sent = [message(n) for n in range(4)]
    for raw in sent:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    assert sync_account(account_for(dovecot, dovecot_user), archive_store).ok
    # Time is controlled by writing pop3_seen.seen_at (when each message was archived,
    # which is what delete_after_days reads) ten days back for the first two messages.
    old = [hashlib.sha256(raw).hexdigest() for raw in sent[:2]]
    rows = archive_store.pop3_seen("pop")
    old_uidls = [u for u, r in rows.items() if r.sha256 in old]
    with archive_store.engine.begin() as conn:
        conn.execute(
            update(pop3_seen)
            .where(pop3_seen.c.uidl.in_(old_uidls))
            .values(seen_at=rows[old_uidls[0]].seen_at - timedelta(days=10))
        )
    dovecot.append(dovecot_user.name, "INBOX", fresh := message(50))

    keys = {"leave_on_server": False, "delete_after_days": 7}
    result = sync_account(account_for(dovecot, dovecot_user, **keys), archive_store)

    assert result.ok, result.error
    assert result.new == 1 and result.folders[0].expunged == 2
    assert on_server(dovecot, dovecot_user) == sorted([*sent[2:], fresh])
    assert in_archive(archive_store) == sorted([*sent, fresh])


def test_apop_against_a_server_configured_for_it(
    make_dovecot: Callable[..., DovecotServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_dovecot(apop=True)
    user = server.add_user()
    monkeypatch.setenv(PASSWORD_ENV, user.password)
    sent = [message(n) for n in range(3)]
    for raw in sent:
        server.append(user.name, "INBOX", raw)
    with ArchiveStore.open("sqlite:///:memory:", migrate=True) as store:
        with capture_logs() as logs:
            result = sync_account(account_for(server, user, auth="apop"), store)
        assert result.ok, result.error
        assert in_archive(store) == sorted(sent)
    (connected,) = [e for e in logs if e["event"] == "pop3.connected"]
    assert connected["auth"] == "apop"


def test_apop_against_a_server_without_it_says_so(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    result = sync_account(account_for(dovecot, dovecot_user, auth="apop"), archive_store)
    assert not result.ok
    assert result.error == (
        f"Account 'pop': POP3 server localhost:{dovecot.ports.pop3s} does not offer APOP "
        '(its greeting carries no <timestamp>). Set auth = "password" (over TLS) or '
        '"sasl-plain" for this account.'
    )


def test_sasl_plain_where_capa_lists_it(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    dovecot.append(dovecot_user.name, "INBOX", raw := message(1))
    result = sync_account(account_for(dovecot, dovecot_user, auth="sasl-plain"), archive_store)
    assert result.ok, result.error
    assert in_archive(archive_store) == [raw]


def test_a_wrong_password_fails_the_run_clearly_and_deletes_nothing(
    make_dovecot: Callable[..., DovecotServer],
    monkeypatch: pytest.MonkeyPatch,
    archive_store: ArchiveStore,
) -> None:
    # A server of its own: Dovecot delays every later login from an address that
    # failed one, which would slow down the tests after this one.
    server = make_dovecot()
    user = server.add_user()
    server.append(user.name, "INBOX", message(1))
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    result = sync_account(account_for(server, user, **DELETE_NOW), archive_store)
    assert not result.ok and result.error is not None
    assert result.error.startswith(
        f"Account 'pop': POP3 login refused by localhost:{server.ports.pop3s} "
        "(auth = 'password'). Check the account's password source."
    )
    assert "wrong-password" not in result.error
    (run,) = archive_store.runs("pop")
    assert run.status == "failed" and run.error == result.error
    assert count_on_server(server, user) == 1


def test_a_server_that_closes_during_retr_fails_the_run_and_deletes_nothing(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    sent = [message(n, body_lines=700) for n in range(20)]  # about 50 KB each
    for raw in sent:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    with CuttingProxy("127.0.0.1", dovecot.ports.pop3) as proxy:
        account = account_for(
            dovecot, dovecot_user, **plain_via(proxy.port), **DELETE_NOW, batch_messages=5
        )
        proxy.cut_after = 520_000  # inside the RETR of about the tenth message
        failed = sync_account(account, archive_store)
        assert proxy.cuts == 1
        assert not failed.ok and failed.error is not None
        assert (
            "the connection to 127.0.0.1" in failed.error and "was lost during RETR" in failed.error
        )
        assert on_server(dovecot, dovecot_user) == sorted(sent), "nothing deleted"
        partial = archive_store.count_entries("pop")
        assert 0 < partial < 20, "whole messages were kept"

        proxy.cut_after = None
        done = sync_account(account, archive_store)
    assert done.ok, done.error
    assert done.new == 20 - partial
    assert in_archive(archive_store) == sorted(sent)
    assert on_server(dovecot, dovecot_user) == []
    assert [r.status for r in archive_store.runs("pop")] == ["ok", "failed"]


def drop_first_body_line(answer: bytes) -> bytes:
    """A RETR answer with its first body line removed, framing intact."""
    head_end = answer.index(b"\r\n\r\n") + 4
    line_end = answer.index(b"\r\n", head_end) + 2
    return answer[:head_end] + answer[line_end:]


def test_a_message_the_server_truncates_is_a_clear_error_and_nothing_is_deleted(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    sent = [message(n) for n in range(5)]
    for raw in sent:
        dovecot.append(dovecot_user.name, "INBOX", raw)
    with TripwireProxy("127.0.0.1", dovecot.ports.pop3) as proxy:
        account = account_for(dovecot, dovecot_user, **plain_via(proxy.port), **DELETE_NOW)
        third_uidl = _uidls_on_server(dovecot, dovecot_user)[2]
        proxy.rewrite_answer_to(b"RETR", 3, drop_first_body_line)
        failed = sync_account(account, archive_store)
        proxy.disarm()

        assert not failed.ok and failed.error is not None
        size, line = len(sent[2]), 72
        assert (
            f"message 3 (UIDL {third_uidl}) came back with {size - line} bytes, LIST said {size}."
            in failed.error
        )
        assert on_server(dovecot, dovecot_user) == sorted(sent), "nothing deleted"
        assert in_archive(archive_store) == sorted(sent[:2] + sent[3:])
        assert archive_store.runs("pop")[0].status == "failed"

        healed = sync_account(account, archive_store)
    assert healed.ok and healed.new == 1
    assert in_archive(archive_store) == sorted(sent)
    assert on_server(dovecot, dovecot_user) == []


def _uidls_on_server(server: DovecotServer, user: MailUser) -> list[str]:
    from syncer.sources.pop3.settings import POP3Settings
    from syncer.sources.pop3.source import POP3Source

    source = POP3Source.open(
        POP3Settings(
            "127.0.0.1", server.ports.pop3, "plain", user.name, user.password, account="probe"
        )
    )
    try:
        return [e.uidl or "" for e in source.listing()]
    finally:
        source.close()


def test_check_compares_the_server_uidls_with_the_archive(
    dovecot: DovecotServer, dovecot_user: MailUser, password: str, archive_store: ArchiveStore
) -> None:
    for n in range(3):
        dovecot.append(dovecot_user.name, "INBOX", message(n))
    config = config_for(dovecot, dovecot_user)
    (account,) = config.accounts
    assert sync_account(account, archive_store).ok
    (report,) = check_accounts(config, archive_store, [account])
    assert report["complete"] is True
    assert report["folders"][0] | {"missing_uids": []} == {
        "folder": "INBOX",
        "uidvalidity": None,
        "server": 3,
        "archive": 3,
        "missing": 0,
        "stale": 0,
        "missing_uids": [],
        "stale_uids": [],
    }

    dovecot.append(dovecot_user.name, "INBOX", message(3))
    (report,) = check_accounts(config, archive_store, [account])
    assert report["complete"] is False
    assert report["folders"][0]["missing_uids"] == _uidls_on_server(dovecot, dovecot_user)[3:]

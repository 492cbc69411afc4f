"""`syncer push` into an empty account on every real server of the suite: Dovecot, Cyrus
(both namespace layouts) and Courier. What arrives is byte-exact with its flags, keywords
and INTERNALDATE, in the same folders by personal name (the separator translated), and a
second push copies nothing.

The messages are CRLF ASCII on purpose: Cyrus refuses NUL bytes and rewrites raw 8-bit
header bytes and bare LF (see docs/servers.md), which is a server's choice, not a loss.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from syncer.cli.app import main
from tests.fixtures_servers import AnyServer
from tests.integration.test_push import FLAGS
from tests.servers.cyrus import CyrusServer
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.imap_helpers import Flag

pytestmark = pytest.mark.integration

#: Folder (personal name) -> messages; INBOX exists on every server before the push.
LAYOUT = {"INBOX": 5, "Sent": 2, "Überweisungen & Co": 3, "Projekte/Ärger 2023": 2}
#: Namespaces of other users and shared folders on the four servers: not the user's own.
OTHERS = ("shared/", "Public/", "Other Users/", "Shared Folders/", "shared.", "#shared.")

Mailbox = dict[str, Counter[tuple[bytes, frozenset[bytes], datetime]]]


def _seed(server: DovecotServer, user: str) -> None:
    n = 0
    items = []
    for folder, count in LAYOUT.items():
        for _ in range(count):
            raw = (
                f"From: a@example.com\r\nSubject: message {n}\r\n"
                f"Message-ID: <seed{n}@example.com>\r\n\r\nbody {n}\r\n"
            ).encode()
            when = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(hours=97 * n, seconds=n)
            items.append((folder, raw, FLAGS[n % len(FLAGS)], when))
            n += 1
    server.seed(user, items)


def _mailbox(server: AnyServer, user: str) -> Mailbox:
    """Non-empty personal folders by personal name: (bytes, flags, INTERNALDATE) each."""
    result: Mailbox = {}
    with server.session(user) as client:
        client.normalise_times = False
        for flags, _sep, name in client.list_folders():
            if name.startswith(OTHERS) or b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            if not uids:
                continue
            data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
            result[server.personal_name(name)] = Counter(
                (
                    item[b"BODY[]"],
                    frozenset(f for f in item[b"FLAGS"] if f.lower() != b"\\recent"),
                    item[b"INTERNALDATE"].astimezone(UTC),
                )
                for item in data.values()
            )
    return result


def _account(name: str, server: AnyServer, user: MailUser) -> str:
    return (
        f'\n[[accounts]]\nname = "{name}"\nhost = "{server.host}"\n'
        f'port = {server.ports.imap}\nsecurity = "plain"\nallow_insecure = true\n'
        f'username = "{user.name}"\npassword_env = "TEST_PW_{name.upper()}"\n'
    )


class _Cli:
    """``syncer --json`` with a config of two accounts: ``a`` on Dovecot, ``b`` on the
    server under test."""

    def __init__(
        self,
        tmp_path: Path,
        a: MailUser,
        dovecot: DovecotServer,
        b: MailUser,
        server: AnyServer,
        extra_a: str = "",
    ) -> None:
        self.database = tmp_path / "archive.db"
        self.config = tmp_path / "syncer.toml"
        self.config.write_text(
            f'[archive]\nurl = "sqlite:///{self.database}"\n'
            + _account("b", server, b)
            + _account("a", dovecot, a)
            + extra_a
        )
        self.env = {**os.environ, "TEST_PW_A": a.password, "TEST_PW_B": b.password}
        CliRunner().invoke(main, ["--config", str(self.config), "init"], env=self.env)

    def __call__(self, *args: str) -> Any:
        return json.loads(self.human(*args, "--json"))

    def human(self, *args: str) -> str:
        result = CliRunner().invoke(
            main, ["--config", str(self.config), *args], env=self.env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    def forget_pushes(self) -> None:
        """What a push killed between its APPENDs and their push_log commit leaves."""
        with sqlite3.connect(self.database) as conn:
            conn.execute("DELETE FROM push_log")


def test_push_into_an_empty_account_is_exact_and_a_second_push_copies_nothing(
    dovecot: DovecotServer, any_server: AnyServer, any_user: MailUser, tmp_path: Path
) -> None:
    a = dovecot.add_user()
    try:
        _seed(dovecot, a.name)
        run = _Cli(tmp_path, a, dovecot, any_user, any_server)
        (synced,) = run("sync", "a")
        assert synced["ok"], synced
        summary = run("push", "--from", "a", "--to", "b")
        assert summary["failed"] == 0, summary
        assert summary["appended"] == sum(LAYOUT.values())
        assert _mailbox(any_server, any_user.name) == _mailbox(dovecot, a.name)

        again = run("push", "--from", "a", "--to", "b")
        assert again["appended"] == 0 and again["failed"] == 0, again
        assert _mailbox(any_server, any_user.name) == _mailbox(dovecot, a.name)

        # The target, synced in turn, checks complete against its server.
        (synced_b,) = run("sync", "b")
        assert synced_b["ok"] and synced_b["new"] == sum(LAYOUT.values()), synced_b
        (report,) = run("check", "b")
        assert report["complete"], report
    finally:
        dovecot.remove_user(a.name)


def _count(server: AnyServer, user: str) -> Counter[str]:
    return Counter({name: sum(c.values()) for name, c in _mailbox(server, user).items()})


def test_an_interrupted_push_recognises_what_the_server_stored_altered(
    dovecot: DovecotServer, any_server: AnyServer, any_user: MailUser, tmp_path: Path
) -> None:
    """Issue 20 #9: Cyrus replaces raw 8-bit header bytes with ``X``, so after a push
    whose push_log rows were lost the re-push did not find those messages by their bytes
    and appended them again. They are recognised by Message-ID, INTERNALDATE and size,
    and the first push reports them as stored altered, not appended (Cyrus only: the
    other servers keep the bytes)."""
    a = dovecot.add_user()
    try:
        when = datetime(2003, 3, 3, 3, 3, 3, tzinfo=UTC)
        no_flags: list[Flag] = []
        items = [
            (
                folder,
                f"From: a@example.com\r\nSubject: {subject} {n}\r\n"
                f"Message-ID: <eight{n}@example.com>\r\n\r\nbody {n}\r\n".encode(),
                no_flags,
                when + timedelta(hours=n),
            )
            for n, (folder, subject) in enumerate(
                [("INBOX", "\u00dcberweisung"), ("INBOX", "plain"), ("Sent", "Gr\u00fc\u00dfe")]
            )
        ]
        dovecot.seed(a.name, items)
        run = _Cli(tmp_path, a, dovecot, any_user, any_server)
        run("sync", "a")
        first = run.human("push", "--from", "a", "--to", "b")
        if isinstance(any_server, CyrusServer):
            assert "  INBOX: 1 appended, 1 stored altered, 0 already there" in first
            assert "Sent (created): 0 appended, 1 stored altered, 0 already there" in first
            assert "The server stored 2 of them with other bytes" in first
        else:
            assert "INBOX: 2 appended, 0 already there" in first, first
            assert "stored altered" not in first
        before = _count(any_server, any_user.name)
        assert before == Counter({"INBOX": 2, "Sent": 1})

        run.forget_pushes()
        again = run("push", "--from", "a", "--to", "b")
        assert (again["appended"], again["stored_altered"], again["failed"]) == (0, 0, 0)
        assert sum(f["found"] for f in again["folders"]) == 3, again
        assert _count(any_server, any_user.name) == before, "nothing appended twice"
    finally:
        dovecot.remove_user(a.name)


def test_push_creates_empty_folders_and_reports_or_maps_shared_namespaces(
    dovecot: DovecotServer, any_server: AnyServer, any_user: MailUser, tmp_path: Path
) -> None:
    """Issue 20 #8: push created no empty folder and left other users' and shared folders
    out without a word. Empty folders arrive; the summary counts what other namespaces
    held; ``--include-shared`` puts them below ``Shared`` on the target."""
    a, c = dovecot.add_user(), dovecot.add_user()
    public = f"pub{uuid.uuid4().hex[:8]}"
    try:
        raw = b"From: a@example.com\r\nMessage-ID: <%d@x>\r\nSubject: s\r\n\r\nbody\r\n"
        when = datetime(2010, 1, 1, tzinfo=UTC)
        dovecot.seed(a.name, [("INBOX", raw % 1, [], when)])
        dovecot.seed(c.name, [("Projects", raw % n, [], when) for n in (2, 3)])
        shared = dovecot.grant(c.name, "Projects", a.name)
        dovecot.create_public_folder(public, [(raw % 4, [], when)])
        for folder in ("Empty", "Tief/Leer"):
            dovecot.create_folder(a.name, folder)
        # Only this test's public folder: other tests' stay visible to every user.
        extra = (
            'namespaces = ["personal", "other", "shared"]\n[accounts.folders]\n'
            f'include = ["INBOX", "Empty", "Tief*", "shared/*", "Public/{public}"]\n'
        )
        run = _Cli(tmp_path, a, dovecot, any_user, any_server, extra)
        (synced,) = run("sync", "a")
        assert synced["ok"], synced

        dry = run.human("push", "--from", "a", "--to", "b", "--dry-run")
        assert "Skipped 1 folder(s) of other users' folders (2 message(s))" in dry, dry
        assert "Skipped 1 folder(s) of shared folders (1 message(s))" in dry
        assert "empty folder(s) would be created" in dry
        first = run("push", "--from", "a", "--to", "b")
        assert first["appended"] == 1 and first["failed"] == 0, first
        assert first["skipped_namespaces"] == {
            "other": {"folders": 1, "messages": 2},
            "shared": {"folders": 1, "messages": 1},
        }
        created = {f["display"] for f in first["folders"] if f["empty"] and f["created"]}
        assert first["empty_folders_created"] == len(created) >= 2
        names = set(_names(any_server, any_user.name))
        assert {"Empty", "Tief/Leer"} <= names

        again = run("push", "--from", "a", "--to", "b")
        assert (again["appended"], again["empty_folders_created"]) == (0, 0), again

        shared_push = run("push", "--from", "a", "--to", "b", "--include-shared")
        assert shared_push["appended"] == 3 and shared_push["skipped_namespaces"] == {}
        counts = _count(any_server, any_user.name)
        assert counts[f"Shared/{shared}"] == 2, counts
        assert counts[f"Shared/Public/{public}"] == 1, counts
        assert counts["INBOX"] == 1
    finally:
        dovecot.remove_user(a.name)
        dovecot.remove_user(c.name)


def _names(server: AnyServer, user: str) -> list[str]:
    with server.session(user) as client:
        return [server.personal_name(name) for _f, _d, name in client.list_folders()]

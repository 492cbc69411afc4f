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
        self, tmp_path: Path, a: MailUser, dovecot: DovecotServer, b: MailUser, server: AnyServer
    ) -> None:
        self.database = tmp_path / "archive.db"
        self.config = tmp_path / "syncer.toml"
        self.config.write_text(
            f'[archive]\nurl = "sqlite:///{self.database}"\n'
            + _account("a", dovecot, a)
            + _account("b", server, b)
        )
        self.env = {**os.environ, "TEST_PW_A": a.password, "TEST_PW_B": b.password}
        CliRunner().invoke(main, ["--config", str(self.config), "init"], env=self.env)

    def __call__(self, *args: str) -> Any:
        result = CliRunner().invoke(
            main, ["--config", str(self.config), *args, "--json"], env=self.env,
            catch_exceptions=False,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

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
        first = run("push", "--from", "a", "--to", "b")
        rewrites = isinstance(any_server, CyrusServer)
        assert (first["appended"], first["stored_altered"]) == ((1, 2) if rewrites else (3, 0))
        assert first["failed"] == 0, first
        before = _count(any_server, any_user.name)
        assert before == Counter({"INBOX": 2, "Sent": 1})

        run.forget_pushes()
        again = run("push", "--from", "a", "--to", "b")
        assert (again["appended"], again["stored_altered"], again["failed"]) == (0, 0, 0)
        assert sum(f["found"] for f in again["folders"]) == 3, again
        assert _count(any_server, any_user.name) == before, "nothing appended twice"
    finally:
        dovecot.remove_user(a.name)

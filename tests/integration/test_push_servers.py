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
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from syncer.cli.app import main
from tests.fixtures_servers import AnyServer
from tests.integration.test_push import FLAGS
from tests.servers.dovecot import DovecotServer, MailUser

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


def test_push_into_an_empty_account_is_exact_and_a_second_push_copies_nothing(
    dovecot: DovecotServer, any_server: AnyServer, any_user: MailUser, tmp_path: Path
) -> None:
    a = dovecot.add_user()
    try:
        _seed(dovecot, a.name)
        config = tmp_path / "syncer.toml"
        config.write_text(
            f'[archive]\nurl = "sqlite:///{tmp_path}/archive.db"\n'
            + _account("a", dovecot, a)
            + _account("b", any_server, any_user)
        )
        env = {**os.environ, "TEST_PW_A": a.password, "TEST_PW_B": any_user.password}

        def run(*args: str) -> Any:
            result = CliRunner().invoke(
                main, ["--config", str(config), *args, "--json"], env=env, catch_exceptions=False
            )
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        CliRunner().invoke(main, ["--config", str(config), "init"], env=env)
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

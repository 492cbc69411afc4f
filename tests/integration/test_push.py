"""`syncer push` and `syncer restore` against real Dovecot: user A synced into the archive,
pushed to user B, must arrive exactly (bytes, flags, keywords, INTERNALDATE, folder
names); a second push copies nothing; a push killed with SIGKILL mid-way and run
again leaves no duplicate.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncer.archive.models import push_log
from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from syncer.model import FolderStatus, RemoteMessage
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.target import IMAPTarget
from syncer.transfer.push import PushOptions, push_archive
from tests.mail_samples import mail
from tests.servers.dovecot import FULL_CAPABILITIES, DovecotServer, MailUser

pytestmark = pytest.mark.integration

#: Folder -> messages seeded into user A (non-ASCII names, a hierarchy, special-use ones).
LAYOUT = {
    "INBOX": 6,
    "Sent": 3,
    "Trash": 2,
    "Überweisungen": 3,
    "Projekte/Ärger 2023": 2,
    "日本語": 2,
}
ATTACHMENTS = ["08-rfc2231-filename", "09-rfc2047-filename", "14-tnef-winmail", "15-binary-cte"]
FLAGS: list[tuple[str, ...]] = [
    ("\\Seen",),
    ("\\Seen", "\\Answered", "$Label1"),
    (),
    ("\\Flagged", "\\Draft", "todo"),
    ("\\Seen", "\\Deleted", "$Forwarded"),
]


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _seed(server: DovecotServer, user: str, layout: dict[str, int], size: int = 0) -> int:
    items = []
    n = 0
    for folder, count in layout.items():
        for _ in range(count):
            if size:
                body = (b"%06d " % n) * (size // 7)
                raw = b"Subject: bulk %d\r\nMessage-ID: <bulk%d@example.com>\r\n\r\n" % (n, n)
                raw += body + b"\r\n"
            elif n % 3 == 0:
                # A header of its own: the same bytes in two folders would be one message.
                raw = b"X-Seed: %d\r\n" % n + _crlf(mail(ATTACHMENTS[n % len(ATTACHMENTS)]))
            else:
                raw = (
                    f"From: a@example.com\r\nSubject: {folder} {n}\r\n"
                    f"Message-ID: <seed{n}@example.com>\r\n\r\nFrom here, body {n}\r\n"
                ).encode()
            when = datetime(1998, 1, 1, tzinfo=UTC) + timedelta(hours=97 * n, seconds=n)
            items.append((folder, raw, FLAGS[n % len(FLAGS)], when))
            n += 1
    server.seed(user, items)
    return n


Mailbox = dict[str, Counter[tuple[bytes, frozenset[bytes], datetime]]]


def _mailbox(server: DovecotServer, user: str) -> Mailbox:
    """Every personal folder of ``user``: its messages as (bytes, flags, INTERNALDATE)."""
    result: Mailbox = {}
    with server.session(user) as client:
        client.normalise_times = False
        for flags, _sep, name in client.list_folders():
            if name.startswith(("shared/", "Public/")) or name in ("shared", "Public"):
                continue
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                result[name] = Counter()
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
            result[name] = Counter(
                (
                    item[b"BODY[]"],
                    frozenset(f for f in item[b"FLAGS"] if f.lower() != b"\\recent"),
                    item[b"INTERNALDATE"].astimezone(UTC),
                )
                for item in data.values()
            )
    return result


@dataclass
class Setup:
    server: DovecotServer
    a: MailUser
    b: MailUser
    tmp: Path
    config: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(
            main, ["--config", str(self.config), *args], env=self.env, catch_exceptions=False
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncer", "--config", str(self.config), *args]


def _setup(server: DovecotServer, tmp: Path) -> Setup:
    a, b = server.add_user(), server.add_user()
    accounts = ""
    for name, user in (("a", a), ("b", b)):
        accounts += (
            f'\n[[accounts]]\nname = "{name}"\nhost = "{server.host}"\n'
            f'port = {server.ports.imap}\nsecurity = "plain"\nallow_insecure = true\n'
            f'username = "{user.name}"\npassword_env = "TEST_PW_{name.upper()}"\n'
        )
    config = tmp / "syncer.toml"
    config.write_text(f'[archive]\nurl = "sqlite:///archive.db"\n{accounts}')
    env = {**os.environ, "TEST_PW_A": a.password, "TEST_PW_B": b.password}
    setup = Setup(server, a, b, tmp, config, env)
    assert setup("init").exit_code == 0
    return setup


@pytest.fixture(scope="module")
def migrated(
    dovecot: DovecotServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Setup, dict[str, Any]]]:
    setup = _setup(dovecot, tmp_path_factory.mktemp("push"))
    _seed(dovecot, setup.a.name, LAYOUT)
    (synced,) = setup.json("sync", "a")
    assert synced["ok"], synced
    summary = setup.json("push", "--from", "a", "--to", "b")
    yield setup, summary
    dovecot.remove_user(setup.a.name)
    dovecot.remove_user(setup.b.name)


def test_b_equals_a_in_bytes_flags_keywords_dates_and_folder_names(
    migrated: tuple[Setup, dict[str, Any]],
) -> None:
    setup, summary = migrated
    a = _mailbox(setup.server, setup.a.name)
    b = _mailbox(setup.server, setup.b.name)
    assert set(a) == set(b)
    assert {name: sum(c.values()) for name, c in a.items()} == {
        "INBOX": 6,
        "Sent": 3,
        "Trash": 2,
        "Überweisungen": 3,
        "Projekte": 0,
        "Projekte/Ärger 2023": 2,
        "日本語": 2,
    }
    assert a == b
    assert summary["appended"] == sum(LAYOUT.values()) and summary["failed"] == 0


def test_a_second_push_copies_nothing(migrated: tuple[Setup, dict[str, Any]]) -> None:
    setup, _ = migrated
    before = _mailbox(setup.server, setup.b.name)
    dry = setup.json("push", "--from", "a", "--to", "b", "--dry-run")
    assert all(row["pending"] == 0 for row in dry["folders"])
    shown = setup("push", "--from", "a", "--to", "b", "--dry-run").output
    assert "  Überweisungen: 0 to copy, 3 pushed before" in shown
    assert "Dry run: nothing was created or appended." in shown
    again = setup.json("push", "--from", "a", "--to", "b")
    assert again["appended"] == 0
    assert all(row["found"] == 0 and row["logged"] > 0 for row in again["folders"])
    assert _mailbox(setup.server, setup.b.name) == before
    with ArchiveStore.open(f"sqlite:///{setup.tmp / 'archive.db'}") as store:
        logged = store.pushed("b")
    assert sum(len(v) for v in logged.values()) == sum(LAYOUT.values())
    assert all(uid is not None for v in logged.values() for uid in v.values()), "APPENDUID"


def test_restore_brings_back_what_the_server_lost_and_nothing_twice(
    migrated: tuple[Setup, dict[str, Any]],
) -> None:
    setup, _ = migrated
    server, user = setup.server, setup.a.name
    before = _mailbox(server, user)
    inbox = server.uids(user, "INBOX")
    server.expunge(user, "INBOX", inbox[:2])
    (synced,) = setup.json("sync", "a")
    assert synced["ok"]
    restored = setup.json("restore", "a")
    rows = {row["target"]: row for row in restored["folders"]}
    assert (rows["INBOX"]["appended"], rows["INBOX"]["found"]) == (2, 4), rows
    assert restored["appended"] == 2
    assert _mailbox(server, user) == before


def test_a_push_killed_midway_and_run_again_leaves_no_duplicate(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    setup = _setup(dovecot, tmp_path)
    try:
        total = _seed(dovecot, setup.a.name, {"INBOX": 700, "Archive": 300}, size=12_000)
        (synced,) = setup.json("sync", "a", "--no-normalize")
        assert synced["new"] == total
        maildir = dovecot.home(setup.b.name) / "Maildir"
        proc = subprocess.Popen(
            setup.argv("push", "--from", "a", "--to", "b"),
            env=setup.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        arrived = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            arrived = sum(len(os.listdir(d)) for d in maildir.rglob("cur"))
            arrived += sum(len(os.listdir(d)) for d in maildir.rglob("new"))
            if arrived >= 250:  # beyond the first APPEND batch, inside the second
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the push ended before it could be killed"
        assert arrived < total
        result = setup.json("push", "--from", "a", "--to", "b")
        assert result["failed"] == 0
        b = _mailbox(dovecot, setup.b.name)
        counts = {name: sum(c.values()) for name, c in b.items()}
        assert counts["INBOX"] == 700 and counts["Archive"] == 300
        assert all(n == 1 for c in b.values() for n in c.values()), "a message arrived twice"
        assert b == _mailbox(dovecot, setup.a.name)
    finally:
        dovecot.remove_user(setup.a.name)
        dovecot.remove_user(setup.b.name)


WHEN = datetime(2003, 5, 1, 12, 0, tzinfo=UTC)


def _archived(path: Path, count: int) -> tuple[ArchiveStore, list[RemoteMessage]]:
    """An archive whose account ``old`` has ``count`` messages in INBOX."""
    store = ArchiveStore.open(f"sqlite:///{path}", migrate=True)
    store.ensure_account("old", "imap")
    store.upsert_folders("old", [FolderStatus("INBOX", "INBOX", "/")])
    batch = [
        RemoteMessage(
            "INBOX",
            n,
            b"Subject: %d\r\nMessage-ID: <p%d@example.com>\r\n\r\nbody\r\n" % (n, n),
            ("\\Seen", "$Label1") if n % 2 else (),
            WHEN,
        )
        for n in range(1, count + 1)
    ]
    store.archive_batch("old", "INBOX", 9, batch, None)
    return store, batch


def _push(store: ArchiveStore, server: DovecotServer, user: MailUser, **kwargs: Any) -> Any:
    settings = IMAPSettings(server.host, server.ports.imap, "plain", user.name, user.password)
    target = IMAPTarget.open(settings)
    try:
        return push_archive(store, target, PushOptions("old", "new"), **kwargs)
    finally:
        target.close()


def _forget(store: ArchiveStore, count: int) -> None:
    """A crash between APPEND and the push_log commit: the log loses ``count`` rows."""
    with store.engine.begin() as conn:
        query = push_log.select().with_only_columns(push_log.c.message_pk)
        pks = sorted(conn.execute(query).scalars())
        conn.execute(push_log.delete().where(push_log.c.message_pk.in_(pks[:count])))


def test_without_multiappend_and_literal_plus_each_append_waits_and_a_crash_is_still_caught(
    make_dovecot: Any, tmp_path: Path
) -> None:
    hidden = {"MULTIAPPEND", "LITERAL+"}
    server = make_dovecot(
        capabilities=" ".join(c for c in FULL_CAPABILITIES.split() if c not in hidden)
    )
    user = server.add_user()
    store, batch = _archived(tmp_path / "a.db", 30)
    with store:
        with server.session(user.name) as client:
            assert not {b"MULTIAPPEND", b"LITERAL+"} & set(client.capabilities())
        assert _push(store, server, user).appended == 30
        _forget(store, 10)
        again = _push(store, server, user)
        assert (again.appended, again.folders["INBOX"].found) == (0, 10)
    (inbox,) = [c for name, c in _mailbox(server, user.name).items() if name == "INBOX"]
    assert sum(inbox.values()) == 30 and set(inbox.values()) == {1}
    assert {raw for raw, _, _ in inbox} == {m.raw for m in batch}
    assert {(frozenset(flags), date) for _, flags, date in inbox} == {
        (frozenset(), WHEN),
        (frozenset({b"\\Seen", b"$Label1"}), WHEN),
    }


def test_an_append_of_a_killed_run_that_lands_late_leaves_no_twin(
    dovecot: DovecotServer, dovecot_user: MailUser, tmp_path: Path
) -> None:
    store, batch = _archived(tmp_path / "a.db", 12)
    with store:
        assert _push(store, dovecot, dovecot_user).appended == 12
        # The killed run's last batch: neither logged nor (yet) on the server ...
        _forget(store, 4)
        uids = sorted(dovecot.uids(dovecot_user.name, "INBOX"))[:4]
        raws = {dovecot.fetch_raw(dovecot_user.name, "INBOX", uid) for uid in uids}
        dovecot.expunge(dovecot_user.name, "INBOX", uids)
        late = [m for m in batch if m.raw in raws]

        def lands(_count: int) -> None:
            # ... until the server finishes storing it, after the re-run looked.
            for message in late:
                dovecot.append(dovecot_user.name, "INBOX", message.raw, message.flags, WHEN)
            late.clear()

        again = _push(store, dovecot, dovecot_user, progress=lands)
        assert (again.appended, again.folders["INBOX"].found) == (0, 4)
        logged = store.pushed("new")["INBOX"]
    inbox = _mailbox(dovecot, dovecot_user.name)["INBOX"]
    assert sum(inbox.values()) == 12 and set(inbox.values()) == {1}
    assert set(logged.values()) == set(dovecot.uids(dovecot_user.name, "INBOX"))


def test_the_push_log_records_and_corrects_uids_on_both_databases(
    archive_store: ArchiveStore,
) -> None:
    store = archive_store
    store.ensure_account("old", "imap")
    batch = [RemoteMessage("INBOX", n, b"Subject: %d\r\n\r\nx\r\n" % n) for n in (1, 2)]
    store.archive_batch("old", "INBOX", 1, batch, None)
    pks = sorted(
        p.message_pk for ids in store.transfer_message_ids() for p in store.placements(ids)
    )
    store.record_pushed("new", [("INBOX", pks[0], 7), ("INBOX", pks[1], None)])
    store.record_pushed("new", [("INBOX", pks[0], 9)])  # a twin's UID replaces ours
    assert store.pushed("new") == {"INBOX": {pks[0]: 9, pks[1]: None}}
    assert store.pushed("other") == {}

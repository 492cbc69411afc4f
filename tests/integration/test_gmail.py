"""Gmail done right, against the Gmail-shaped double (tests/servers/gmail.py): labels kept,
every body downloaded once, provider limits respected.

The double is a real Dovecot (All Mail plus a virtual folder per label) behind a proxy that
adds X-GM-EXT-1; its module docstring lists what it does not model (top-level label
folders, system labels, threads, Gmail's own bandwidth accounting and timing, TLS, ...).
"""

from __future__ import annotations

import email
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncer.archive.store import ArchiveStore
from syncer.config.schema import AccountConfig
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource
from syncer.sources.imap.target import IMAPTarget
from syncer.sync.folders import SyncOptions, sync_folders
from syncer.sync.runner import sync_account
from syncer.transfer.export import ExportOptions, export_archive
from syncer.transfer.push import PushOptions, push_archive
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.gmail import ALL_MAIL, LABEL_PREFIX, GmailProxy, define_label, label_keyword

pytestmark = pytest.mark.integration
ACCOUNT = "gmail"
LABELS = ("Work", "Travel", "Family")
MESSAGES = 1000


@dataclass
class Mailbox:
    """A Gmail-shaped mailbox: what each message's labels and flags are."""

    server: DovecotServer
    proxy: GmailProxy
    user: MailUser
    labels: dict[str, tuple[str, ...]]  # Message-ID -> labels
    flags: dict[str, tuple[str, ...]]  # Message-ID -> flags

    def source(self) -> IMAPSource:
        return IMAPSource(
            IMAPSettings(
                host="127.0.0.1",
                port=self.proxy.port,
                security="plain",
                username=self.user.name,
                password=self.user.password,
                account=ACCOUNT,
            )
        )

    def sync(self, store: ArchiveStore, **options: Any) -> list[Any]:
        source = self.source()
        try:
            return sync_folders(source, store, ACCOUNT, SyncOptions(**options))
        finally:
            source.close()


def _message(n: int) -> bytes:
    return (
        f"From: Sender {n} <s{n}@example.com>\r\nTo: me@gmail.example\r\n"
        f"Message-ID: <g{n}@example.com>\r\nSubject: gmail {n}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
    ).encode() + b"Body line of a Gmail message\r\n" * (n % 7 + 1)


def make_mailbox(server: DovecotServer, proxy: GmailProxy, count: int) -> Mailbox:
    """``count`` messages in All Mail, each with 1-3 labels; some \\Seen or \\Flagged."""
    user = server.add_user()
    rng = random.Random(21)
    labels: dict[str, tuple[str, ...]] = {}
    flags: dict[str, tuple[str, ...]] = {}
    items = []
    for n in range(count):
        chosen = tuple(sorted(rng.sample(LABELS, rng.randint(1, 3))))
        system = tuple(f for f, p in (("\\Seen", 0.6), ("\\Flagged", 0.1)) if rng.random() < p)
        labels[f"g{n}@example.com"] = chosen
        flags[f"g{n}@example.com"] = system
        items.append((ALL_MAIL, _message(n), [*system, *map(label_keyword, chosen)], None))
    server.seed(user.name, items)
    for label in LABELS:
        define_label(server, user.name, label)
    proxy.reset_counts()
    return Mailbox(server, proxy, user, labels, flags)


@pytest.fixture
def mailbox(gmail_dovecot: DovecotServer, gmail_proxy: GmailProxy) -> Iterator[Mailbox]:
    box = make_mailbox(gmail_dovecot, gmail_proxy, MESSAGES)
    yield box
    gmail_dovecot.remove_user(box.user.name)


def test_first_sync_downloads_each_body_once_and_keeps_labels(
    mailbox: Mailbox, archive_store: ArchiveStore
) -> None:
    archive_store.ensure_account(ACCOUNT, "imap")
    summaries = {s.folder: s for s in mailbox.sync(archive_store, batch_messages=200)}

    # Every body exactly once, all from All Mail; the label folders only linked.
    assert len(mailbox.proxy.bodies) == MESSAGES
    assert set(mailbox.proxy.bodies.values()) == {1}
    assert summaries[ALL_MAIL].new == MESSAGES
    per_label = Counter(label for labels in mailbox.labels.values() for label in labels)
    for label in LABELS:
        folder = summaries[LABEL_PREFIX + label]
        assert (folder.new, folder.bytes, folder.reused) == (0, 0, per_label[label])

    # label: finds exactly the messages with that label, on either database.
    for label in LABELS:
        assert archive_store.count_messages(f"label:{label}") == per_label[label]
        assert archive_store.count_messages(f"label:{label.lower()}") == per_label[label]
    both = sum(1 for v in mailbox.labels.values() if {"Work", "Travel"} <= set(v))
    assert archive_store.count_messages("label:Work label:Travel") == both
    assert archive_store.count_messages("label:Wor") == 0  # a whole name, not a prefix
    seen = sum(1 for v in mailbox.flags.values() if "\\Seen" in v)
    assert archive_store.count_messages("flag:seen") == seen

    # A second sync downloads nothing.
    mailbox.proxy.reset_counts()
    again = mailbox.sync(archive_store)
    assert mailbox.proxy.body_bytes == 0 and sum(s.new for s in again) == 0


def test_label_changes_follow_condstore_like_flags(
    gmail_dovecot: DovecotServer, gmail_proxy: GmailProxy, archive_store: ArchiveStore
) -> None:
    box = make_mailbox(gmail_dovecot, gmail_proxy, 30)
    try:
        archive_store.ensure_account(ACCOUNT, "imap")
        box.sync(archive_store)
        without_family = [m for m, v in box.labels.items() if "Family" not in v]
        # Another client labels three messages "Family" (X-GM-LABELS STORE through the proxy).
        targets = without_family[:3]
        with gmail_dovecot.session(box.user.name) as client:
            client.select_folder(ALL_MAIL)
            for msgid in targets:
                found = client.search(["HEADER", "Message-ID", msgid])
                client.add_flags(found, [label_keyword("Family")])
        before = archive_store.count_messages("label:Family")
        gmail_proxy.reset_counts()
        summaries = {s.folder: s for s in box.sync(archive_store)}
        assert archive_store.count_messages("label:Family") == before + 3
        assert summaries[ALL_MAIL].flags_changed == 3
        # The label folder gained three entries, linked: no body downloaded.
        assert summaries[LABEL_PREFIX + "Family"].reused == 3
        assert gmail_proxy.body_bytes == 0
    finally:
        gmail_dovecot.remove_user(box.user.name)


# -- provider limits -----------------------------------------------------------------------


def _account(box: Mailbox, monkeypatch: pytest.MonkeyPatch, **keys: Any) -> AccountConfig:
    monkeypatch.setenv("GMAIL_DOUBLE_PW", box.user.password)
    keys.setdefault("provider", "gmail")
    keys.setdefault("retries", 2)
    return AccountConfig(
        name=ACCOUNT,
        host="127.0.0.1",
        port=box.proxy.port,
        security="plain",
        allow_insecure=True,
        username=box.user.name,
        password_env="GMAIL_DOUBLE_PW",
        **keys,
    )


def _assert_complete(box: Mailbox, store: ArchiveStore) -> None:
    """Every message once in All Mail, each label folder complete, nothing twice."""
    assert len(store.entries(ACCOUNT, ALL_MAIL)) == len(box.labels)
    assert store.count_messages("") == len(box.labels)
    per_label = Counter(label for labels in box.labels.values() for label in labels)
    for label in LABELS:
        assert len(store.entries(ACCOUNT, LABEL_PREFIX + label)) == per_label[label]
        assert store.count_messages(f"label:{label}") == per_label[label]


@pytest.fixture
def small_box(gmail_dovecot: DovecotServer, gmail_proxy: GmailProxy) -> Iterator[Mailbox]:
    box = make_mailbox(gmail_dovecot, gmail_proxy, 300)
    yield box
    gmail_proxy.throttle_next_fetches(0)
    gmail_proxy.cut_after_body_bytes = None
    gmail_proxy.cut_repeatedly = False
    gmail_dovecot.remove_user(box.user.name)


def test_throttled_sync_waits_then_resumes_without_loss_or_duplicates(
    small_box: Mailbox, archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = _account(small_box, monkeypatch, batch_messages=50)
    now = datetime.now(UTC)
    small_box.proxy.throttle_next_fetches(1, after=2)  # the third batch is refused

    first = sync_account(account, archive_store, clock=lambda: now)
    assert not first.ok and first.error is not None
    assert "[THROTTLED]" in first.error and "resumes at" in first.error
    resume = archive_store.resume_at(ACCOUNT)
    assert resume is not None and timedelta(minutes=9) < resume - now <= timedelta(minutes=10)
    assert archive_store.runs(ACCOUNT)[0]["resume_at"] is not None
    assert len(archive_store.entries(ACCOUNT, ALL_MAIL)) == 100  # two committed batches kept
    # What the throttled run downloaded counts against the daily budget.
    assert archive_store.runs(ACCOUNT)[0]["bytes"] > 0

    # Before the wait is over a run does nothing but say when it resumes.
    small_box.proxy.reset_counts()
    waiting = sync_account(account, archive_store, clock=lambda: now + timedelta(minutes=5))
    assert waiting.ok and "resumes at" in waiting.warnings[0]
    assert small_box.proxy.body_bytes == 0 and len(archive_store.runs(ACCOUNT)) == 1

    later = sync_account(account, archive_store, clock=lambda: now + timedelta(minutes=11))
    assert later.ok, later.error
    _assert_complete(small_box, archive_store)
    # Only the 200 messages not yet archived were downloaded, each once.
    assert len(small_box.proxy.bodies) == 200 and set(small_box.proxy.bodies.values()) == {1}


def test_connection_dropped_mid_body_is_retried_and_resumes(
    small_box: Mailbox, archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = _account(small_box, monkeypatch, batch_messages=50, provider=None)
    small_box.proxy.cut_after_body_bytes = 40_000  # inside the third or fourth batch
    summary = sync_account(account, archive_store)
    assert summary.ok, summary.error
    assert small_box.proxy.cuts == 1  # the drop happened, mid-body
    _assert_complete(small_box, archive_store)


def test_a_connection_that_keeps_dropping_is_waited_out_like_a_limit(
    small_box: Mailbox, archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = _account(small_box, monkeypatch, batch_messages=50, retries=1)
    small_box.proxy.cut_after_body_bytes = 5_000  # inside the first batch, every time
    small_box.proxy.cut_repeatedly = True
    now = datetime.now(UTC)
    first = sync_account(account, archive_store, clock=lambda: now)
    assert not first.ok and first.error is not None and "resumes at" in first.error
    assert small_box.proxy.cuts == 2  # the first attempt and one quick retry
    resume = archive_store.resume_at(ACCOUNT)
    assert resume is not None and resume - now == timedelta(minutes=10)

    small_box.proxy.cut_after_body_bytes = None
    later = sync_account(account, archive_store, clock=lambda: now + timedelta(minutes=11))
    assert later.ok, later.error
    _assert_complete(small_box, archive_store)


def test_daily_budget_stops_cleanly_and_the_next_day_continues(
    small_box: Mailbox, archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = 30_000
    account = _account(small_box, monkeypatch, batch_messages=50, max_bytes_per_day=budget)
    start = datetime.now(UTC)
    runs = 0
    while True:
        clock = start + timedelta(days=runs, minutes=1)
        small_box.proxy.reset_counts()
        summary = sync_account(account, archive_store, clock=lambda c=clock: c)  # type: ignore[misc]
        runs += 1
        assert summary.ok, summary.error
        # At most one batch (50 messages, under 15 kB here) past the budget.
        assert small_box.proxy.body_bytes < budget + 15_000
        if not summary.warnings:
            break
        assert "budget" in summary.warnings[0] and "resumes at" in summary.warnings[0]
        # status shows when it resumes and that the download is part-way.
        shown = archive_store.status()["accounts"][ACCOUNT]
        assert shown["resume_at"] is not None
        assert not all(f["complete"] for f in shown["folders"])
        # The same day, a second run waits instead of downloading.
        again = sync_account(account, archive_store, clock=lambda c=clock: c + timedelta(hours=1))  # type: ignore[misc]
        assert again.ok and "resumes at" in again.warnings[0]
        assert runs < 10
    assert runs >= 3
    _assert_complete(small_box, archive_store)


# -- export and migration ------------------------------------------------------------------


def _push_to(store: ArchiveStore, host: str, port: int, user: MailUser, target: str) -> Any:
    settings = IMAPSettings(host, port, "plain", user.name, user.password)
    imap = IMAPTarget.open(settings)
    try:
        return push_archive(store, imap, PushOptions(ACCOUNT, target))
    finally:
        imap.close()


def _message_ids(raws: list[bytes]) -> set[str]:
    return {email.message_from_bytes(raw)["Message-ID"].strip("<>") for raw in raws}


def test_export_and_migration_keep_every_label_and_flag(
    mailbox: Mailbox,
    tmp_path: Path,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    gmail_dovecot: DovecotServer,
    gmail_proxy: GmailProxy,
) -> None:
    store = ArchiveStore.open(f"sqlite:///{tmp_path / 'a.db'}", migrate=True)
    try:
        store.ensure_account(ACCOUNT, "imap")
        mailbox.sync(store)
        per_label = Counter(label for labels in mailbox.labels.values() for label in labels)

        # Default export: byte-exact; --labels header: Takeout's X-Gmail-Labels line.
        plain = export_archive(store, ExportOptions("mbox", tmp_path / "plain", split="none"))
        assert plain.messages == MESSAGES
        assert b"X-Gmail-Labels" not in (tmp_path / "plain" / "messages.mbox").read_bytes()
        header = export_archive(
            store,
            ExportOptions("eml", tmp_path / "header", labels="header"),
        )
        assert header.messages == MESSAGES + sum(per_label.values())  # All Mail + label folders
        for path in (tmp_path / "header").rglob("*.eml"):
            parsed = email.message_from_bytes(path.read_bytes())
            msgid = parsed["Message-ID"].strip("<>")
            assert parsed["X-Gmail-Labels"] == ",".join(mailbox.labels[msgid])
        # --labels folders: one folder per label, each message once per label.
        folders = export_archive(
            store, ExportOptions("maildir", tmp_path / "folders", labels="folders")
        )
        assert folders.messages == sum(per_label.values())
        for label in LABELS:
            assert folders.folders[f"{ACCOUNT}/{label}"] == per_label[label]

        # Gmail -> Dovecot: every label a folder, every flag kept, nothing else copied.
        summary = _push_to(store, dovecot.host, dovecot.ports.imap, dovecot_user, "dovecot")
        assert summary.failed == 0 and summary.appended == sum(per_label.values())
        on_target = set(dovecot.folders(dovecot_user.name))
        assert set(LABELS) <= on_target and ALL_MAIL not in on_target
        for label in LABELS:
            uids = dovecot.uids(dovecot_user.name, label)
            raws = [dovecot.fetch_raw(dovecot_user.name, label, uid) for uid in uids]
            expected = {m for m, labels in mailbox.labels.items() if label in labels}
            assert _message_ids(raws) == expected
            flags = dovecot.flags(dovecot_user.name, label)
            for uid, raw in zip(uids, raws, strict=True):
                (msgid,) = _message_ids([raw])
                assert {str(f) for f in flags[uid]} - {"\\Recent"} == set(mailbox.flags[msgid])

        # Gmail -> Gmail: each message appended once, its labels set by X-GM-LABELS STORE.
        other = make_mailbox(gmail_dovecot, gmail_proxy, 0)
        try:
            summary = _push_to(store, "127.0.0.1", gmail_proxy.port, other.user, "gmail2")
            assert summary.failed == 0 and summary.appended == MESSAGES
            with other.source() as source:
                source.select(ALL_MAIL)
                pushed = [m for batch in source.fetch_messages() for m in batch]
            got = {next(iter(_message_ids([m.raw]))): m for m in pushed}
            assert len(got) == MESSAGES
            for msgid, message in got.items():
                assert message.labels == mailbox.labels[msgid]
                assert set(message.flags) == set(mailbox.flags[msgid])
        finally:
            gmail_dovecot.remove_user(other.user.name)
    finally:
        store.close()

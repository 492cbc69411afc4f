"""Archive → normalize → rows, on SQLite and PostgreSQL.

The normalized columns and rows are written in one transaction per batch,
replace what an earlier normalization wrote, keep the raw message untouched
(also when it cannot be parsed), join threads across batches, and resume
after an interruption. ``syncer status`` counts what still awaits.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from syncer.archive.engine import downgrade, make_engine, upgrade
from syncer.archive.models import addresses, attachments, message_texts, messages
from syncer.archive.store import ArchiveStore
from syncer.mime.parsed import NORMALIZER_VERSION
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from tests.mail_samples import mail, names

MAIL_BOMB = (
    b"Subject: top\r\nFrom: a@example.com\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 3000
)


def _archive(store: ArchiveStore, raws: list[bytes], *, first_uid: int = 1) -> None:
    store.ensure_account("work", "imap")
    batch = [
        RemoteMessage(folder="INBOX", uid=first_uid + i, raw=raw, flags=("\\Seen",))
        for i, raw in enumerate(raws)
    ]
    store.archive_batch("work", "INBOX", 1, batch, None)


def _pk(store: ArchiveStore, message_id: str) -> int:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(messages.c.id).where(messages.c.message_id_header == message_id)
        ).scalar_one()
    return int(found)


def _count(store: ArchiveStore, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_the_corpus_archives_normalizes_and_keeps_every_byte(archive_store: ArchiveStore) -> None:
    corpus = {name: mail(name) for name in names()}
    _archive(archive_store, list(corpus.values()))
    assert archive_store.status().totals.awaiting_normalization == len(corpus)

    counts = normalize_pending(archive_store, workers=1)

    assert counts.processed == len(corpus) and counts.failed == 0
    assert archive_store.status().totals.awaiting_normalization == 0
    assert archive_store.normalization_backlog() == 0
    for raw in corpus.values():
        sha = archive_store.find_message(__import__("hashlib").sha256(raw).hexdigest()[:12])
        assert archive_store.get_raw(archive_store.message_detail(sha).sha256) == raw

    korean = archive_store.message_detail(_pk(archive_store, "<30@corpus.example>")).to_dict()
    assert korean["headers"]["subject"] == "한국어 제목입니다"
    assert korean["addresses"]["from"] == [
        {
            "name": "김민준",
            "address": "minjun.kim@hanbit.example",
            "display": "minjun.kim@hanbit.example",
        }
    ]
    assert korean["headers"]["date"] == "2024-12-02T09:15:00+00:00"
    assert korean["text_excerpt"] == "안녕하세요. 회의 일정 확인 부탁드립니다."
    assert korean["parse"]["normalizer_version"] == NORMALIZER_VERSION

    nested = archive_store.message_detail(_pk(archive_store, "<4@corpus.example>")).to_dict()
    assert [
        (a["index"], a["part_path"], a["filename"], a["inline"]) for a in nested["attachments"]
    ] == [
        (1, "1.2.2", "logo.png", True),
        (2, "2", "report.pdf", False),
    ]
    assert nested["folders"][0]["account"] == "work" and nested["folders"][0]["flags"] == ["\\Seen"]

    phishing = archive_store.message_detail(_pk(archive_store, "<87@corpus.example>")).to_dict()
    assert phishing["suspicious"] is True
    assert phishing["auth"]["dmarc"] == "fail" and phishing["risk_note"].startswith("DMARC fail")

    invalid = archive_store.message_detail(_pk(archive_store, "<56@corpus.example>")).to_dict()
    assert invalid["headers"]["date"] is None
    assert invalid["headers"]["date_status"] == "invalid"
    assert invalid["headers"]["date_raw"] == "sometime next week, probably"

    nul = archive_store.message_detail(_pk(archive_store, "<26@corpus.example>")).to_dict()
    assert nul["text_excerpt"] == "beforeafter"  # PostgreSQL text cannot hold NUL


def test_a_parse_failure_keeps_the_raw_message_and_the_headers_it_could_read(
    archive_store: ArchiveStore,
) -> None:
    _archive(archive_store, [MAIL_BOMB])
    normalize_pending(archive_store, workers=1)
    view = archive_store.message_detail(1).to_dict()
    assert view["parse"]["status"] == "failed"
    assert "RecursionError" in view["parse"]["error"]
    assert view["headers"]["subject"] == "top"
    assert view["addresses"]["from"][0]["address"] == "a@example.com"
    assert archive_store.get_raw(view["sha256"]) == MAIL_BOMB
    assert archive_store.normalization_backlog() == 0


def test_rebuild_replaces_derived_rows_instead_of_adding_to_them(
    archive_store: ArchiveStore,
) -> None:
    _archive(
        archive_store,
        [mail(n) for n in ("04-nested-mixed-alternative-related", "61-address-forms")],
    )
    normalize_pending(archive_store, workers=1)
    before = (
        _count(archive_store, addresses),
        _count(archive_store, attachments),
        _count(archive_store, message_texts),
    )

    counts = normalize_pending(archive_store, rebuild=True, workers=1)

    assert (counts.marked, counts.processed) == (2, 2)
    after = (
        _count(archive_store, addresses),
        _count(archive_store, attachments),
        _count(archive_store, message_texts),
    )
    assert after == before and before[1] == 2


def test_rebuild_since_a_date_marks_only_later_messages(archive_store: ArchiveStore) -> None:
    _archive(archive_store, [mail("24-no-mime-version-no-content-type"), mail("01-plain-ascii")])
    normalize_pending(archive_store, workers=1)
    counts = normalize_pending(
        archive_store, rebuild=True, since=datetime(2000, 1, 1, tzinfo=UTC), workers=1
    )
    assert (counts.marked, counts.processed) == (1, 1)


def test_threads_join_across_batches_whatever_the_order(archive_store: ArchiveStore) -> None:
    # The In-Reply-To-only reply arrives (and is normalized) before its parent.
    _archive(archive_store, [mail("73-thread-in-reply-to-only")])
    normalize_pending(archive_store, workers=1)
    _archive(
        archive_store,
        [mail("70-thread-root"), mail("71-thread-reply"), mail("72-thread-reply-to-reply")],
        first_uid=10,
    )
    normalize_pending(archive_store, workers=1)
    _archive(archive_store, [mail("74-orphan-reply"), mail("75-orphan-sibling")], first_uid=20)
    normalize_pending(archive_store, workers=1)

    keys = {
        n: archive_store.message_detail(_pk(archive_store, f"<{n}@corpus.example>")).thread_key
        for n in (70, 71, 72, 73, 74, 75)
    }
    assert keys[70] == keys[71] == keys[72] == keys[73]
    assert keys[74] == keys[75] != keys[70]


def test_an_interrupted_run_keeps_its_batches_and_the_next_one_finishes(
    archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.BATCH_MESSAGES", 10)
    _archive(archive_store, [mail(n) for n in names()[:25]])

    def stop_after_first_batch(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        normalize_pending(archive_store, workers=1, progress=stop_after_first_batch)
    assert archive_store.normalization_backlog() == 15

    assert normalize_pending(archive_store, workers=1).processed == 15
    assert archive_store.normalization_backlog() == 0


def test_the_process_pool_gives_the_same_rows(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.POOL_THRESHOLD", 5)
    monkeypatch.setattr("syncer.sync.normalize.BATCH_MESSAGES", 20)
    corpus = [mail(n) for n in names()]
    views = []
    for workers in (1, 2):
        with ArchiveStore.open(f"sqlite:///{tmp_path}/pool{workers}.db", migrate=True) as store:
            _archive(store, corpus)
            counts = normalize_pending(store, workers=workers)
            assert counts.workers == workers and counts.processed == len(corpus)
            views.append([store.message_detail(pk).to_dict() for pk in range(1, len(corpus) + 1)])
    for one, two in zip(*views, strict=True):
        for view in (one, two):
            view["parse"].pop("normalized_at")
            view.pop("first_seen_at")
        assert one == two


def test_normalized_rows_survive_a_downgrade_to_0001_and_back(archive_url: str) -> None:
    with ArchiveStore.open(archive_url, migrate=True) as store:
        _archive(store, [mail("01-plain-ascii")])
        normalize_pending(store, workers=1)
    engine = make_engine(archive_url)
    try:
        downgrade(engine, "0001")
        with engine.connect() as conn:
            subject = conn.exec_driver_sql("SELECT subject, parse_status FROM messages").one()
        assert tuple(subject) == ("Plain ASCII", "ok")
        upgrade(engine)
    finally:
        engine.dispose()
    with ArchiveStore.open(archive_url) as store:
        # The 0002 columns came back empty: the message awaits normalization again.
        assert store.normalization_backlog() == 1
        assert normalize_pending(store, workers=1).processed == 1

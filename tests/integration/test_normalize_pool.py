"""The normalization pool (syncer.sync.normalize_pool): real worker processes on pipes.

The workers must derive exactly what the in-process stage derives, with the
attachments a child reads (PDF, HTML) read by the one extractor child of this
process for all workers, its time limit and restart included; no
multiprocessing resource tracker may start; and a worker that dies must fail
its tasks (the stage stops with an error, what it saved stays saved, and
``normalize_pending`` finishes the rest).
"""

from __future__ import annotations

import hashlib
import os
import signal
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select, update

from syncer.archive.models import blobs, messages
from syncer.archive.store import ArchiveStore
from syncer.errors import SyncerError
from syncer.mime.attachments import TextExtractor
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from syncer.sync.normalize_pool import Pool, WorkerDied
from syncer.sync.normalize_work import normalize_one
from tests.mail_samples import mail, names
from tests.unit.test_attachment_text import slow_pdf


def _with_files(n: int, pdf: bytes) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = f"files {n}"
    msg["Message-ID"] = f"<files{n}@example.com>"
    msg.set_content(f"body {n}")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="a.pdf")
    msg.add_attachment(f"<p>page <b>{n}</b></p>", subtype="html", filename="b.html")
    msg.add_attachment(b"plain words", maintype="text", subtype="plain", filename="c.txt")
    return msg.as_bytes()


def _processes_here(word: str) -> list[int]:
    """This process's live children whose command line holds ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and word in line:
            found.append(int(entry.name))
    return found


def test_the_workers_derive_what_this_process_derives_with_one_extractor_for_all() -> None:
    raws = [mail(name) for name in names()] + [_with_files(n, slow_pdf(n + 1)) for n in range(6)]
    with TextExtractor() as here:
        expected = [normalize_one(raw, False, None, here, "sqlite") for raw in raws]
    with TextExtractor() as shared:
        pool = Pool(2, verify_dkim=False, dialect="sqlite", extractor=lambda: shared)
        try:
            futures = [pool.submit(partial(list, raws[i : i + 5])) for i in range(0, len(raws), 5)]
            got = [done for future in futures for done in future.result(timeout=120)]
            assert len(_processes_here("syncer.mime.attachments")) == 1
            assert len(_processes_here("normalize_work")) == 2
            assert _processes_here("resource_tracker") == []
        finally:
            pool.shutdown()
    assert got == expected
    texts = got[-1][0].attachment_texts
    assert [(t.part_path, t.text) for t in texts] == [
        ("2", "a" * 6),
        ("3", "page 5"),
        ("4", "plain words"),
    ]
    assert _processes_here("normalize_work") == []


def test_a_hostile_attachment_times_out_in_the_shared_child_and_the_next_is_read() -> None:
    hostile = _with_files(0, slow_pdf(5_000_000))  # about 5 s of PDFium
    fine = _with_files(1, slow_pdf(2))
    with TextExtractor(timeout=1.0) as shared:
        pool = Pool(2, verify_dkim=False, dialect="sqlite", extractor=lambda: shared)
        try:
            stopped, after = [
                pool.submit(partial(list, [raw])).result(timeout=120)[0][0]
                for raw in (hostile, fine)
            ]
        finally:
            pool.shutdown()
    assert stopped.attachment_texts[0].note == "timed out after 1 s; not read"
    assert after.attachment_texts[0].text == "aa"


def test_a_dead_worker_fails_its_tasks() -> None:
    with TextExtractor() as shared:
        pool = Pool(1, verify_dkim=False, dialect="sqlite", extractor=lambda: shared)
        try:
            assert pool.submit(lambda: [mail(names()[0])]).result(timeout=60)
            (worker,) = _processes_here("normalize_work")
            os.kill(worker, signal.SIGKILL)
            with pytest.raises(WorkerDied, match="exited with -9"):
                pool.submit(lambda: [mail(names()[0])]).result(timeout=60)
            with pytest.raises(WorkerDied):
                pool.submit(lambda: [mail(names()[1])]).result(timeout=60)
        finally:
            pool.shutdown()


def test_a_worker_killed_mid_run_stops_the_stage_and_the_next_run_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.POOL_THRESHOLD", 5)
    monkeypatch.setattr("syncer.sync.normalize.BATCH_MESSAGES", 10)
    raws = [
        b"Subject: m %d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(80)
    ]
    with ArchiveStore.open(f"sqlite:///{tmp_path}/a.db", migrate=True) as store:
        store.ensure_account("work", "imap")
        batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=raw) for i, raw in enumerate(raws)]
        store.archive_batch("work", "INBOX", 1, batch, None)

        def kill_the_workers(done: int, total: int) -> None:
            for pid in _processes_here("normalize_work"):
                os.kill(pid, signal.SIGKILL)

        with pytest.raises(SyncerError, match="worker process died"):
            normalize_pending(store, workers=2, progress=kill_the_workers)
        left = store.normalization_backlog()
        assert 0 < left < len(raws)
        assert normalize_pending(store, workers=2).processed == left
        assert store.normalization_backlog() == 0


def test_an_unreadable_blob_fails_its_message_and_the_pool_normalizes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool reads each task's raw messages when a worker is free; one that cannot
    be read is recorded as failed, as in-process, and its neighbours are normalized."""
    monkeypatch.setattr("syncer.sync.normalize.POOL_THRESHOLD", 5)
    raws = [
        b"Subject: m %d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(40)
    ]
    with ArchiveStore.open(f"sqlite:///{tmp_path}/a.db", migrate=True) as store:
        store.ensure_account("work", "imap")
        batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=raw) for i, raw in enumerate(raws)]
        store.archive_batch("work", "INBOX", 1, batch, None)
        victim = hashlib.sha256(raws[17]).hexdigest()
        with store.engine.begin() as conn:
            conn.execute(update(blobs).where(blobs.c.sha256 == victim).values(data=b"garbage"))
        counts = normalize_pending(store, workers=2)
        assert (counts.workers, counts.processed, counts.failed) == (2, 40, 1)
        with store.engine.connect() as conn:
            error = conn.execute(
                select(messages.c.parse_error).where(messages.c.sha256 == victim)
            ).scalar_one()
        assert error.startswith("raw message unreadable: ")
        assert store.normalization_backlog() == 0

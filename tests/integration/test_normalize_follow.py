"""The default sync normalizes while it downloads (syncer.sync.normalize.Follower).

The download is played by the call the IMAP and POP3 pipelines make to commit
a batch (``archive_batch``), from the test's thread, one batch at a time; the
follower must save normalized batches before the download ends, with its pool,
and leave nothing awaiting. A follower stopped half-way (the sync crashed)
leaves the rest awaiting, and ``normalize_pending`` finishes it.
"""

from __future__ import annotations

import threading
import time

import pytest

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import Follower, normalize_pending
from tests.mail_samples import mail, names

RAWS = [mail(name) for name in names()] + [
    b"Subject: filler %d\r\nMessage-ID: <f%d@x>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(124)
]


def _download(
    store: ArchiveStore, events: list[str], saved: threading.Event, batches: int = 8
) -> None:
    """Commit the corpus batch by batch; the last one only once a batch is normalized.

    A stage that normalized only after the download would never get there (the
    wait fails after a minute), whatever the machine's load.
    """
    store.ensure_account("work", "imap")
    size = len(RAWS) // batches + 1
    starts = list(range(0, len(RAWS), size))
    for number, start in enumerate(starts):
        if number == len(starts) - 1:
            assert saved.wait(60), "nothing was normalized while the download went on"
        batch = [
            RemoteMessage(folder="INBOX", uid=start + i + 1, raw=raw)
            for i, raw in enumerate(RAWS[start : start + size])
        ]
        store.archive_batch("work", "INBOX", 1, batch, None)
        events.append(f"archived {number}")
        time.sleep(0.1)  # the server's next answer


def test_batches_are_normalized_while_the_download_goes_on(
    archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.POOL_THRESHOLD", 10)
    monkeypatch.setattr("syncer.sync.normalize.BATCH_MESSAGES", 20)
    events: list[str] = []
    saved = threading.Event()
    save = archive_store.save_normalized

    def saving(*args: object, **kwargs: object) -> None:
        save(*args, **kwargs)  # type: ignore[arg-type]
        events.append("normalized")
        saved.set()

    monkeypatch.setattr(archive_store, "save_normalized", saving)
    with Follower(archive_store, workers=2) as follower:
        _download(archive_store, events, saved)
        counts = follower.finish()
    assert counts.processed == len(RAWS) and counts.workers == 2
    assert archive_store.normalization_backlog() == 0
    last_download = max(i for i, e in enumerate(events) if e.startswith("archived"))
    assert "normalized" in events[:last_download]


def test_a_sync_that_fails_leaves_the_rest_for_syncer_normalize(
    archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncer.sync.normalize.BATCH_MESSAGES", 10)
    events: list[str] = []

    class Crash(Exception):
        pass

    def crashing_download() -> None:
        archive_store.ensure_account("work", "imap")
        batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=r) for i, r in enumerate(RAWS)]
        archive_store.archive_batch("work", "INBOX", 1, batch, None)
        events.append("archived")
        time.sleep(0.5)
        raise Crash

    with pytest.raises(Crash), Follower(archive_store, workers=1):
        crashing_download()
    left = archive_store.normalization_backlog()
    assert 0 <= left < len(RAWS)
    assert normalize_pending(archive_store, workers=1).processed == left
    assert archive_store.normalization_backlog() == 0


def test_a_small_delta_waits_for_the_download_instead_of_loading_the_normalizer_here(
    archive_store: ArchiveStore,
) -> None:
    """Below the pool's threshold nothing is normalized while the download goes on (in
    this process that would hold the normalizer and an extractor child for the rest of a
    long run); the delta is normalized in-process once the download ends."""
    archive_store.ensure_account("work", "imap")
    batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=r) for i, r in enumerate(RAWS[:50])]
    with Follower(archive_store, workers=2) as follower:
        archive_store.archive_batch("work", "INBOX", 1, batch, None)
        time.sleep(1.0)  # five looks of the follower
        assert archive_store.normalization_backlog() == 50
        counts = follower.finish()
    assert counts.processed == 50 and counts.workers == 1
    assert archive_store.normalization_backlog() == 0

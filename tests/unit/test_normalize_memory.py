"""The normalization stage's memory bounds: pool tasks, download batches, the heap.

Why: the default ``syncer sync`` runs a download, a pool and its extractor
children together, and their peak resident memory is bounded
(docs/performance.md, "Memory of the default sync"); these are the knobs
that bound it.
"""

from __future__ import annotations

import pytest

from syncer.config.schema import parse_config
from syncer.sync import normalize
from syncer.sync.normalize_work import release_heap

MB = 1024 * 1024


def test_pool_tasks_are_cut_by_bytes_as_well_as_by_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(normalize, "_CHUNK_BYTES", 3 * MB)
    raws = [b"x" * MB] * 7 + [b"y"] * 40
    tasks = normalize._tasks(raws)
    assert [len(task) for task in tasks] == [3, 3, 16, 16, 9]  # 16 = normalize._CHUNK
    assert all(sum(map(len, task)) <= 3 * MB for task in tasks)
    assert [raw for task in tasks for raw in task] == raws


def _accounts(**extra: object) -> list[object]:
    account = {"name": "a", "host": "h", "username": "u", "password_env": "X"} | extra
    config = parse_config({"archive": {"url": "sqlite:////tmp/x.db"}, "accounts": [account]})
    return list(normalize.follow_download_batches(config.accounts))


def test_download_batches_are_smaller_while_the_stage_follows_unless_configured() -> None:
    (default,) = _accounts()
    assert default.batch_bytes == normalize.FOLLOW_BATCH_BYTES  # type: ignore[attr-defined]
    (configured,) = _accounts(batch_bytes=64 * MB)
    assert configured.batch_bytes == 64 * MB  # type: ignore[attr-defined]
    (small,) = _accounts(batch_bytes=MB)
    assert small.batch_bytes == MB  # type: ignore[attr-defined]


def test_heap_helpers_run_here() -> None:
    """glibc's trim is called, or skipped elsewhere, without error."""
    release_heap()
    release_heap()

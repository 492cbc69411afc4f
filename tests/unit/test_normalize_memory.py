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
from syncer.sync.normalize_work import fix_heap_thresholds, release_heap

MB = 1024 * 1024


def test_pool_tasks_are_cut_by_bytes_as_well_as_by_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(normalize, "_CHUNK_BYTES", 3 * MB)
    sizes = [MB] * 7 + [1] * 40 + [5 * MB, 1]
    tasks = normalize._tasks(sizes)
    # 16 = normalize._CHUNK; a message larger than the cap is a task of its own
    assert [stop - start for start, stop in tasks] == [3, 3, 16, 16, 9, 1, 1]
    assert all(sum(sizes[start:stop]) <= 3 * MB for start, stop in tasks[:5])
    assert [i for start, stop in tasks for i in range(start, stop)] == list(range(len(sizes)))
    assert normalize._tasks([]) == []


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
    """glibc's trim and thresholds are set, or skipped elsewhere, without error."""
    release_heap()
    release_heap()
    fix_heap_thresholds()
    assert bytes(4 * MB)[-1] == 0

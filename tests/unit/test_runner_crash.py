"""A sync that dies of an unexpected exception is recorded as failed, not left 'running'.

Why: ``status`` showed such a run as running for ever after the process had exited
(issue 16); only ``SyncerError`` was recorded. The exception still propagates, so the
CLI reports it as an unexpected error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncer.archive.engine import upgrade
from syncer.archive.store import ArchiveStore
from syncer.config.schema import parse_config
from syncer.sources.memory import ALL_CAPABILITIES, MemorySource
from syncer.sync.runner import sync_account


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArchiveStore]:
    url = f"sqlite:///{tmp_path}/a.db"
    upgrade(url)
    with ArchiveStore.open(url, threads=0) as opened:
        yield opened


class _Exploding(MemorySource):
    def list_folders(self, *, with_status: bool = True):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in the pipeline")


def test_an_unexpected_exception_records_the_run_as_failed(store: ArchiveStore) -> None:
    config = parse_config(
        {
            "archive": {"url": "sqlite://"},
            "accounts": [{"name": "acct", "host": "h", "username": "u", "password_env": "X"}],
        }
    )
    with pytest.raises(RuntimeError, match="a bug in the pipeline"):
        sync_account(config.accounts[0], store, connect=lambda _a: _Exploding(ALL_CAPABILITIES))
    (run,) = store.runs("acct")
    assert run.status == "failed"
    assert run.error == "unexpected error: RuntimeError: a bug in the pipeline"
    assert store.lease_holder("account:acct") is None, "the lease is released"

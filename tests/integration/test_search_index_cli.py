"""``syncer index``: catch up after an upgrade, rebuild (resuming an interrupted one), status.

SQLite only: the command is one store call; the store methods run on both
databases in test_search_index.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from syncer.archive.models import job_state
from syncer.archive.search.index import clear_index
from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from tests.integration.test_search_index import Archive, archive, corpus


def _syncer(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_index_catches_up_rebuilds_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    config = tmp_path / "syncer.toml"
    config.write_text(f'[archive]\nurl = "{url}"\n', encoding="utf-8")
    raws = {name: raw for name, raw in corpus().items() if name in ("invoice", "korean", "pdf")}
    with ArchiveStore.open(url, migrate=True) as store:
        ids = archive(store, raws)
        # As after an upgrade to the schema with the index: normalized, not indexed.
        with store.engine.begin() as conn:
            clear_index(conn)
        assert Archive(store, ids).find("all", "메일") == set()

    status = json.loads(_syncer(config, "index", "--status", "--json"))
    assert (status["messages"], status["normalized"], status["indexed"]) == (3, 3, 0)

    assert _syncer(config, "index").startswith("Indexed 3 messages in ")
    with ArchiveStore.open(url) as store:
        assert Archive(store, ids).find("all", "메일") == {"korean"}
        # A rebuild interrupted after the first message goes on from there.
        with store.engine.begin() as conn:
            conn.execute(
                job_state.insert().values(
                    kind="search_index", name="rebuild", cursor_pk=min(ids.values())
                )
            )
    assert "rebuild stopped after message" in _syncer(config, "index", "--status")

    report = json.loads(_syncer(config, "index", "--rebuild", "--json"))

    assert report["run"] == {
        "indexed": 2,
        "seconds": report["run"]["seconds"],
        "rebuild": True,
        "resumed_after": min(ids.values()),
    }
    assert (report["indexed"], report["rebuild_at"]) == (3, None)
    assert report["index_bytes"] is None or report["index_bytes"] > 0
    with ArchiveStore.open(url) as store:
        assert Archive(store, ids).find("attachments", "renewal terms") == {"pdf"}

"""The sync summary names folders created, deleted and renamed on the server (issue 20
#10), in the human output; ``--json`` carries ``change`` and ``renamed_from`` per folder."""

from __future__ import annotations

import pytest

from syncer.cli.render import render_sync
from syncer.model import FolderSummary, RunSummary


def test_folder_changes_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    summary = RunSummary(
        account="work",
        run_id="r1",
        ok=True,
        folders=(
            FolderSummary(folder="INBOX", skipped=True),
            FolderSummary(folder="Brand new", new=1, change="created"),
            FolderSummary(folder="Renamed", change="renamed", renamed_from="Old"),
            FolderSummary(folder="Gone", change="deleted"),
        ),
    )
    render_sync([summary])
    out = capsys.readouterr().out
    assert "folders: 1 created, 1 renamed, 1 deleted" in out
    assert "Brand new (new folder): 1 new" in out
    assert "Renamed (renamed from Old): 0 new" in out
    assert "Gone: deleted on the server" in out

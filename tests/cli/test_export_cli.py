"""`syncer export` and `syncer import` as a user runs them: summaries, JSON, and the
one-line errors for a directory that is not ours and a path with nothing to import.
"""

from __future__ import annotations

from pathlib import Path

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from tests.cli.conftest import Syncer


def _archive(cli: Syncer) -> None:
    with ArchiveStore.open(f"sqlite:///{cli.tmp_path / 'archive.db'}", migrate=True) as store:
        store.ensure_account("work", "imap")
        batch = [
            RemoteMessage("INBOX", n, b"Subject: %d\r\nMessage-ID: <c%d@x>\r\n\r\nhi\r\n" % (n, n))
            for n in (1, 2, 3)
        ]
        store.archive_batch("work", "INBOX", 1, batch, None)


def test_export_then_import_from_the_command_line(syncer_cli: Syncer, tmp_path: Path) -> None:
    _archive(syncer_cli)
    out = tmp_path / "out"
    exported = syncer_cli.json("export", "--format", "maildir", "--out", str(out))
    assert exported["messages"] == 3 and exported["folders"] == {"work/INBOX": 3}
    again = syncer_cli("export", "--format", "maildir", "--out", str(out), "--since-last")
    assert again.exit_code == 0
    assert "Exported 0 message(s)" in again.output and "(3 already there)" in again.output

    imported = syncer_cli.json("import", "maildir", str(out / "work"), "--account", "copy")
    assert imported == {"added": {"INBOX": 3}, "present": {"INBOX": 0}}
    twice = syncer_cli("import", "maildir", str(out / "work"), "--account", "copy")
    assert twice.exit_code == 0 and "0 added, 3 already archived" in twice.output


def test_errors_are_one_line_with_exit_status_2(syncer_cli: Syncer, tmp_path: Path) -> None:
    _archive(syncer_cli)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    busy = syncer_cli("export", "--format", "eml", "--out", str(tmp_path / "busy"))
    assert busy.exit_code == 2
    assert busy.output.startswith(f"Error: {tmp_path / 'busy'} is not empty and holds no syncer")
    (tmp_path / "empty").mkdir()
    nothing = syncer_cli("import", "mbox", str(tmp_path / "empty"), "--account", "x")
    assert nothing.exit_code == 2 and "holds no *.mbox file" in nothing.output
    unknown = syncer_cli("push", "--from", "nobody", "--to", "work")
    assert unknown.exit_code == 2, unknown.output
    assert unknown.output.startswith("Error: ") and "Traceback" not in unknown.output

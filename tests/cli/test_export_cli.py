"""`syncer export` and `syncer import` as a user runs them: summaries, JSON, and the
one-line errors for a directory that is not ours and a path with nothing to import.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def _add(cli: Syncer, n: int) -> None:
    with ArchiveStore.open(f"sqlite:///{cli.tmp_path / 'archive.db'}") as store:
        raw = b"Subject: %d\r\nMessage-ID: <c%d@x>\r\n\r\nhi\r\n" % (n, n)
        store.archive_batch("work", "INBOX", 1, [RemoteMessage("INBOX", n, raw)], None)


@pytest.mark.parametrize("fmt", ["maildir", "eml", "mbox"])
def test_export_since_last_never_writes_through_a_planted_symlink(
    syncer_cli: Syncer, tmp_path: Path, fmt: str
) -> None:
    # Issue 16, item 4: the Maildir tmp/ file, the .eml temporary and the state file's
    # temporary were opened by name; links planted there overwrote files outside PATH.
    _archive(syncer_cli)
    out = tmp_path / "out"
    assert syncer_cli("export", "--format", fmt, "--out", str(out)).exit_code == 0
    victim = tmp_path / "victim"
    victim.write_text("precious")
    folder = out / "work" / "INBOX"
    planted = [out / ".syncer-export.json.tmp"]
    if fmt == "maildir":
        planted.append(folder / "tmp" / "0.planted.syncer")
    elif fmt == "eml":
        planted.append(folder / ".00000000-000000-4-x.eml.tmp")
    else:
        planted.append(out / "work" / "Other.mbox")
    for link in planted:
        link.symlink_to(victim)
    _add(syncer_cli, 4)

    again = syncer_cli("export", "--format", fmt, "--out", str(out), "--since-last")
    assert again.exit_code == 2
    assert "is a symbolic link" in again.output and str(out) in again.output
    assert victim.read_text() == "precious"


def test_export_files_are_private_whatever_the_umask(syncer_cli: Syncer, tmp_path: Path) -> None:
    _archive(syncer_cli)
    out = tmp_path / "out"
    old = os.umask(0o002)
    try:
        assert syncer_cli("export", "--format", "maildir", "--out", str(out)).exit_code == 0
    finally:
        os.umask(old)
    found = list(out.rglob("*"))
    assert found and all(
        (p.stat().st_mode & 0o777) == (0o700 if p.is_dir() else 0o600) for p in [out, *found]
    ), {str(p): oct(p.stat().st_mode & 0o777) for p in [out, *found]}


def test_import_maildir_refuses_symlinks_under_the_path(syncer_cli: Syncer, tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$secret:19000:0:99999:7:::\n")
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.msg:2,S").write_bytes(b"Subject: fine\r\n\r\nok\r\n")
    (maildir / "cur" / "2.msg:2,S").symlink_to(secret)
    syncer_cli("init")
    refused = syncer_cli("import", "maildir", str(maildir), "--account", "copy")
    assert refused.exit_code == 2 and "2.msg:2,S is a symbolic link" in refused.output

    (maildir / "cur" / "2.msg:2,S").unlink()
    outside = tmp_path / "elsewhere"
    for sub in ("cur", "new", "tmp"):
        (outside / sub).mkdir(parents=True)
    (outside / "cur" / "3.msg:2,S").write_bytes(b"Subject: outside\r\n\r\nno\r\n")
    (maildir / ".Linked").symlink_to(outside)
    refused = syncer_cli("import", "maildir", str(maildir), "--account", "copy")
    assert refused.exit_code == 2 and ".Linked is a symbolic link" in refused.output
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path / 'archive.db'}") as store:
        assert store.message_count() == 0, "nothing is imported from a PATH with a link"

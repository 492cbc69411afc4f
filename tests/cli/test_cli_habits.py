"""CLI habits: -q and --log-file, shell completion with account names, manual pages."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from syncer.cli.app import main
from syncer.cli.manpages import write_manpages
from tests.cli.conftest import Syncer

ACCOUNTS = """
[[accounts]]
name = "work"
host = "imap.example.com"
username = "me"
password_env = "WORK_PASS"

[[accounts]]
name = "home"
protocol = "pop3"
host = "pop.example.com"
username = "me"
password_env = "HOME_PASS"
"""


def _mbox(path: Path) -> Path:
    path.write_bytes(b"From a@b Mon Dec  2 09:00:00 2024\nSubject: hi\n\nbody\n")
    return path


def test_quiet_leaves_stderr_empty_and_the_log_file_keeps_the_events(syncer_cli: Syncer) -> None:
    log_file = syncer_cli.tmp_path / "syncer.log"
    mbox = _mbox(syncer_cli.tmp_path / "in.mbox")
    result = syncer_cli(
        "-q", "--log-file", str(log_file), "import", "mbox", str(mbox), "--account", "old"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    events = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
    assert "archive.created" in events


def test_without_quiet_the_first_use_is_said_once(syncer_cli: Syncer) -> None:
    mbox = _mbox(syncer_cli.tmp_path / "in.mbox")
    first = syncer_cli("import", "mbox", str(mbox), "--account", "old")
    assert first.stderr.count("archive.created") == 1
    again = syncer_cli("import", "mbox", str(mbox), "--account", "old")
    assert "archive.created" not in again.stderr


def test_completion_scripts_and_account_names(syncer_cli: Syncer) -> None:
    syncer_cli.write_config('[archive]\nurl = "sqlite:///archive.db"\n' + ACCOUNTS)
    for shell in ("bash", "zsh", "fish"):
        script = syncer_cli("completion", shell)
        assert script.exit_code == 0 and "_SYNCER_COMPLETE" in script.stdout
    env = {
        "_SYNCER_COMPLETE": "bash_complete",
        "COMP_WORDS": f"syncer --config {syncer_cli.config_path} sync w",
        "COMP_CWORD": "4",
    }
    offered = CliRunner().invoke(main, [], env=env, prog_name="syncer")
    assert offered.stdout.split() == ["plain,work"]


def test_a_manual_page_for_every_command(tmp_path: Path) -> None:
    pages = {p.name: p.read_text() for p in write_manpages(tmp_path)}
    assert {"syncer.1", "syncer-sync.1", "syncer-config-init.1", "syncer-completion.1"} <= set(
        pages
    )
    sync = pages["syncer-sync.1"]
    assert sync.startswith('.TH "SYNCER-SYNC" "1"')
    assert "\\fB--dry-run\\fR" in sync and ".SH DESCRIPTION" in sync

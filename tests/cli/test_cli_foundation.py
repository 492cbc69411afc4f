"""The foundation commands: init, status, verify, db, config check, and how errors look."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from syncer.archive.engine import make_engine
from syncer.archive.store import ArchiveStore
from syncer.model import FolderCursor, FolderStatus, RemoteMessage
from tests.cli.conftest import Syncer

ACCOUNT = """
[[accounts]]
name = "work"
host = "imap.example.com"
username = "me"
password_env = "WORK_PASS"
"""


def _seed(url: str, blob_store: str = "db") -> list[bytes]:
    raws = [b"Subject: one\r\n\r\nhello\r\n", b"Subject: two\r\n\r\nworld\r\n"]
    with ArchiveStore.open(url, blob_store=blob_store) as store:
        store.ensure_account("work", "imap")
        store.upsert_folders(
            "work", [FolderStatus(name="INBOX", display_name="INBOX", delimiter="/")]
        )
        msgs = [
            RemoteMessage(folder="INBOX", uid=i + 1, raw=r, size=len(r)) for i, r in enumerate(raws)
        ]
        store.archive_batch(
            "work", "INBOX", 7, msgs, FolderCursor(uidvalidity=7, uidnext=3, messages=2)
        )
    return raws


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_init_then_status_json(
    syncer_cli: Syncer, engine: str, request: pytest.FixtureRequest
) -> None:
    url = "sqlite:///archive.db" if engine == "sqlite" else request.getfixturevalue("pg_url")
    syncer_cli.write_config(f'[archive]\nurl = "{url}"\n' + ACCOUNT)
    result = syncer_cli("init")
    assert result.exit_code == 0, result.output
    assert "Archive ready" in result.stdout
    status = syncer_cli.json("status")
    assert status["totals"]["messages"] == 0
    if engine == "postgresql":
        assert "postgres" in status["database"]


def test_init_twice_is_harmless_and_db_current_reports_head(syncer_cli: Syncer) -> None:
    assert syncer_cli("init").exit_code == 0
    assert syncer_cli("init").exit_code == 0
    current = syncer_cli.json("db", "current")
    assert current["up_to_date"] is True


def test_read_commands_on_a_missing_archive_say_so_and_create_nothing(syncer_cli: Syncer) -> None:
    syncer_cli.write_config('[archive]\nurl = "sqlite:///data/archive.db"\n' + ACCOUNT)
    for command in (("status",), ("search", "x"), ("verify",), ("show", "1")):
        result = syncer_cli(*command)
        assert result.exit_code == 1, command
        assert result.stderr.startswith("Error: no archive yet: run `syncer sync`"), command
    assert not (syncer_cli.tmp_path / "data").exists()


def test_an_empty_database_asks_for_db_upgrade(syncer_cli: Syncer) -> None:
    (syncer_cli.tmp_path / "archive.db").touch()
    result = syncer_cli("status")
    assert result.exit_code == 1
    assert "Run `syncer db upgrade`" in result.stderr


def test_config_init_writes_a_starter_that_loads_and_config_example_prints_the_example(
    syncer_cli: Syncer,
) -> None:
    from syncer.config.schema import load_config

    for provider in ("generic", "gmail", "microsoft"):
        target = syncer_cli.tmp_path / provider / "syncer.toml"
        result = syncer_cli("config", "init", "--provider", provider, str(target))
        assert result.exit_code == 0, result.output
        assert load_config(target).accounts[0].name == "mail"
    assert "imap.gmail.com" in (syncer_cli.tmp_path / "gmail" / "syncer.toml").read_text()
    again = syncer_cli("config", "init", str(syncer_cli.tmp_path / "generic" / "syncer.toml"))
    assert again.exit_code == 2
    assert "exists already" in again.stderr
    example = syncer_cli("config", "example")
    shipped = Path(__file__).resolve().parents[2] / "syncer/config/examples/syncer.example.toml"
    assert example.stdout == shipped.read_text()


def test_status_counts_what_was_archived(syncer_cli: Syncer) -> None:
    syncer_cli("init")
    _seed(f"sqlite:///{syncer_cli.tmp_path}/archive.db")
    status = syncer_cli.json("status")
    assert status["totals"]["messages"] == 2
    assert list(status["accounts"]) == ["work"]
    assert status["accounts"]["work"]["messages"] == 2
    human = syncer_cli("status")
    assert human.exit_code == 0
    assert "work (imap): 2 messages" in human.stdout


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_verify_detects_a_blob_altered_in_the_table(
    syncer_cli: Syncer, engine: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{syncer_cli.tmp_path}/archive.db"
        if engine == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    syncer_cli.write_config(f'[archive]\nurl = "{url}"\n')
    syncer_cli("init")
    _seed(url)
    clean = syncer_cli("verify")
    assert clean.exit_code == 0, clean.output
    assert "2 blobs checked, 0 problems." in clean.stdout

    from syncer.archive.blobs import compress

    engine_ = make_engine(url)
    with engine_.begin() as conn:
        sha = conn.execute(text("SELECT sha256 FROM blobs ORDER BY sha256 LIMIT 1")).scalar_one()
        conn.execute(
            text("UPDATE blobs SET data = :d WHERE sha256 = :s"),
            {"d": compress(b"Subject: one\r\n\r\nHELLO\r\n"), "s": sha},
        )
    engine_.dispose()
    broken = syncer_cli("verify")
    assert broken.exit_code == 1
    assert sha[:12] in broken.stdout
    assert "1 problem." in broken.stdout


def test_verify_detects_a_blob_altered_on_disk(syncer_cli: Syncer) -> None:
    syncer_cli.write_config('[archive]\nurl = "sqlite:///archive.db"\nblob_store = "fs:blobs"\n')
    syncer_cli("init")
    _seed(
        f"sqlite:///{syncer_cli.tmp_path}/archive.db", blob_store=f"fs:{syncer_cli.tmp_path}/blobs"
    )
    files = sorted((syncer_cli.tmp_path / "blobs").rglob("*.zst"))
    assert len(files) == 2
    assert syncer_cli("verify").exit_code == 0
    data = bytearray(files[0].read_bytes())
    data[-1] ^= 0xFF
    files[0].write_bytes(bytes(data))
    broken = syncer_cli("verify", "--json")
    assert broken.exit_code == 1
    assert files[0].name[:12] in broken.stdout


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (ACCOUNT + 'colour = "blue"\n', r"accounts\[0\] \(work\): unknown key 'colour'"),
        (ACCOUNT + 'port = "nine"\n', r"accounts\[0\] \(work\)\.port: .*integer"),
        (ACCOUNT + 'password_file = "/x"\n', r"two secret sources given"),
        (ACCOUNT + 'security = "plain"\n', r"allow_insecure = true"),
        ("[archive\n", r"not valid TOML"),
    ],
    ids=["unknown-key", "wrong-type", "two-secrets", "plain-without-allow-insecure", "bad-toml"],
)
def test_bad_config_is_one_clear_line_and_exit_2(
    syncer_cli: Syncer, body: str, expected: str
) -> None:
    path = syncer_cli.write_config(body)
    result = syncer_cli("status")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {path}")
    assert re.search(expected, lines[0])
    assert "Traceback" not in result.output


def test_a_command_validates_the_sections_it_reads_and_config_check_all(
    syncer_cli: Syncer,
) -> None:
    """`syncer search` reads [archive] (and [logging]): a mistake elsewhere is for the
    commands that read it, and for `config check`; one in [archive] stops it (exit 2)."""
    assert syncer_cli("init").exit_code == 0
    good = '[archive]\nurl = "sqlite:///archive.db"\n'
    path = syncer_cli.write_config(good + ACCOUNT + 'port = "nine"\n\n[web]\nlisten = "x"\n')
    result = syncer_cli("search", "anything")
    assert result.exit_code == 0 and result.stdout == "No messages match.\n", result.output
    check = syncer_cli("config", "check")
    assert check.exit_code == 2
    assert "accounts[0] (work).port" in check.stderr and "web.listen" in check.stderr
    assert syncer_cli("sync").stderr.startswith(f"Error: {path}: accounts[0] (work).port")
    syncer_cli.write_config('[archive]\nurl = "mysql://x"\n' + ACCOUNT)
    bad = syncer_cli("search", "anything")
    assert bad.exit_code == 2
    assert bad.stderr.startswith(f"Error: {path}: archive.url: expected a database URL")


def test_missing_secret_env_var_is_exit_2_naming_the_variable(syncer_cli: Syncer) -> None:
    syncer_cli.write_config(ACCOUNT)
    result = syncer_cli("config", "check")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: account 'work': environment variable WORK_PASS")


def test_config_check_never_prints_the_secret(syncer_cli: Syncer) -> None:
    syncer_cli.write_config(ACCOUNT)
    result = syncer_cli("config", "check", env={"WORK_PASS": "hunter2-secret"})
    assert result.exit_code == 0, result.output
    assert "hunter2-secret" not in result.output


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    cli = Syncer(tmp_path, tmp_path / "nope.toml")
    result = cli("status")
    assert result.exit_code == 2
    assert "nope.toml: file not found" in result.stderr


def test_console_script_version_and_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncer", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("syncer, version ")


def test_every_command_has_help_and_is_in_the_readme() -> None:
    import click

    from syncer.cli.app import main

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()

    def walk(group: click.Group, prefix: str) -> list[str]:
        names = []
        ctx = click.Context(group)
        for name in group.list_commands(ctx):  # the lazily loaded feature commands too
            cmd = group.get_command(ctx, name)
            assert cmd is not None, f"`syncer {prefix} {name}` is listed but cannot be loaded"
            full = f"{prefix} {name}".strip()
            if isinstance(cmd, click.Group):
                names += walk(cmd, full)
            else:
                assert cmd.help, f"`syncer {full}` has no help"
                names.append(full)
        return names

    for name in walk(main, ""):
        assert f"syncer {name}" in readme, f"`syncer {name}` is not in the README"


def test_a_sync_does_not_import_the_feature_commands() -> None:
    # Every `syncer` start pays for what syncer.cli.app imports; a no-change sync must stay cheap.
    import subprocess
    import sys

    code = (
        "import sys, syncer.cli.app\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('syncer.cli_'))\n"
        "assert not loaded, loaded\n"
        "import click\n"
        "assert syncer.cli.app.main.get_command(click.Context(syncer.cli.app.main), 'search')\n"
        "assert 'syncer.cli.search' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

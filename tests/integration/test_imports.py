"""Commands import what they need and nothing else (whole processes, ``python -X importtime``).

Why: every command pays its imports before it does anything; a no-change
``syncer sync`` (IMAP or POP3) must not load the normalizer, the search index
or the attachment extractors, and the commands people type (``search``,
``show``, ``status``) must not load the parser, the normalization stage or the
SQLAlchemy ORM. The list of modules a command imported is read from the
interpreter's own ``-X importtime`` report, so nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.dovecot import DovecotServer, MailUser

#: What no command below may import.
NEVER = (
    "sqlalchemy.orm",
    "syncer.mime.normalize",
    "syncer.mime.parts",
    "syncer.mime.attachments",
    "concurrent.futures.process",
)
#: What a sync with nothing new may not import either (besides NEVER): the search index
#: and its tokenizer (search needs the tokenizer for the query).
NOT_ON_NO_CHANGE = ("syncer.archive.search.index", "syncer.archive.search.tokens")


class Imports(dict[str, str]):
    """Modules a process imported, each with the chain of imports that brought it in."""


def _chains(report: str) -> Imports:
    """Parse ``-X importtime`` output (children are listed before their parent, indented more)."""
    lines = [
        line.rsplit("|", 1)[1] for line in report.splitlines() if line.startswith("import time:")
    ]
    found = Imports()
    for index, line in enumerate(lines):
        name, depth = line.strip(), len(line) - len(line.lstrip())
        chain = [name]
        for later in lines[index + 1 :]:
            level = len(later) - len(later.lstrip())
            if level < depth:
                chain.append(later.strip())
                depth = level
        found[name] = " <- ".join(chain)
    return found


def _imported(config: Path, env: dict[str, str], *args: str) -> Imports:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "syncer", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return _chains(done.stderr)


def _config(tmp_path: Path, account: str) -> Path:
    config = tmp_path / "syncer.toml"
    config.write_text('[archive]\nurl = "sqlite:///archive.db"\n\n' + account)
    return config


def _forbidden(modules: Imports, names: tuple[str, ...]) -> list[str]:
    """The forbidden modules imported, each with its import chain."""
    return sorted(
        chain
        for module, chain in modules.items()
        if any(module == n or module.startswith(n + ".") for n in names)
    )


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_sync_with_nothing_new_imports_no_normalizer_index_or_extractor(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, protocol: str
) -> None:
    port = dovecot.ports.imaps if protocol == "imap" else dovecot.ports.pop3s
    config = _config(
        tmp_path,
        f'[[accounts]]\nname = "mail"\nprotocol = "{protocol}"\nhost = "{dovecot.host}"\n'
        f'port = {port}\nsecurity = "tls"\nca_file = "{dovecot.tls.ca}"\n'
        f'username = "{dovecot_user.name}"\npassword_env = "TEST_PASSWORD"\n',
    )
    env = {**os.environ, "TEST_PASSWORD": dovecot_user.password}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert (
            subprocess.run(
                [sys.executable, "-m", "syncer", "--config", str(config), "init"], env=env
            ).returncode
            == 0
        )
        first = _imported(config, env, "sync")  # whatever the mailbox holds
        again = _imported(config, env, "sync")
    finally:
        os.chdir(cwd)
    assert "syncer.sync.normalize" in first
    assert _forbidden(again, NEVER + NOT_ON_NO_CHANGE) == []


@pytest.mark.parametrize("command", [["search", "budget", "--limit", "20"], ["status"]])
def test_commands_people_type_import_no_parser_stage_or_orm(
    tmp_path: Path, command: list[str]
) -> None:
    config = _config(
        tmp_path,
        '[[accounts]]\nname = "mail"\nhost = "127.0.0.1"\nport = 1\nsecurity = "plain"\n'
        'allow_insecure = true\nusername = "u"\npassword_env = "TEST_PASSWORD"\n',
    )
    env = {**os.environ, "TEST_PASSWORD": "x"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert (
            subprocess.run(
                [sys.executable, "-m", "syncer", "--config", str(config), "init"], env=env
            ).returncode
            == 0
        )
        modules = _imported(config, env, *command)
    finally:
        os.chdir(cwd)
    assert "syncer.cli.app" in modules
    assert _forbidden(modules, NEVER) == []

"""Commands import what they need and nothing else (whole processes, ``python -X importtime``).

Why: every command pays its imports before it does anything; a no-change
``syncer sync`` (IMAP or POP3) must not load the normalizer, the search index
or the attachment extractors, and the commands people type (``search``,
``show``, ``status``) must not load the parser, the normalization stage or the
SQLAlchemy ORM; and no command loads rich for structlog (only the commands that
draw tables import it), nor a POP3 sync imapclient. The list of modules a command
imported is read from the interpreter's own ``-X importtime`` report (which gives
the chain that brought each in), kept to what is in ``sys.modules`` at exit (the
report lists failed imports too), so nothing is mocked.
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
#: and its tokenizer (search needs the tokenizer for the query), the migration machinery
#: (the archive is at the schema head), and rich (the summary is plain lines).
NOT_ON_NO_CHANGE = (
    "syncer.archive.search.index",
    "syncer.archive.search.tokens",
    "alembic",
    "rich",
)
#: What the commands people type may not import either (besides NEVER).
NOT_TO_SEARCH_OR_SHOW = ("alembic", "rich.traceback", "rich.pretty", "pygments", "imapclient")
#: The store's mixins that ``search`` and ``show`` never call: they open the archive as
#: StoreSearch and MessageReader (syncer.archive.reader), not as the whole ArchiveStore.
OTHER_STORE_MIXINS = (
    "syncer.archive.store",
    "syncer.archive.store_admin",
    "syncer.archive.store_retention",
    "syncer.archive.store_relay",
    "syncer.archive.store_transfer",
    "syncer.archive.store_users",
    "syncer.archive.store_push",
    "syncer.archive.search.index_store",
)
#: What ``search`` printing columns does not import either: the message view and
#: normalization mixin (``show``'s), and the snippets (the columns show none).
NOT_TO_SEARCH = ("syncer.archive.store_normalize", "syncer.archive.search.snippet")
#: What ``status`` does not import: it reads what the jobs and the push watchers
#: recorded; it runs no job (the sync pipeline, push, retention, relay) and connects nowhere.
NOT_TO_STATUS = (
    "syncer.daemon.push",
    "syncer.sync.runner",
    "syncer.sync.normalize",
    "syncer.retention.job",
    "syncer.relay.outbox",
    "syncer.connect",
    "imapclient",
)


class Imports(dict[str, str]):
    """Modules a process imported, each with the chain of imports that brought it in, and
    the configuration models it built (``built_models``)."""

    built_models: set[str]


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


#: Runs the command line and writes, at exit, the names in ``sys.modules`` to argv[1] and
#: the configuration models whose validator was built (pydantic builds them on first use:
#: :class:`syncer.config.base.Strict`) to argv[1] + ".models".
_RUN = (
    "import atexit, sys\n"
    "out = sys.argv.pop(1)\n"
    "def built():\n"
    "    base = sys.modules.get('syncer.config.base')\n"
    "    todo, found = [base.Strict] if base else [], []\n"
    "    while todo:\n"
    "        model = todo.pop()\n"
    "        todo.extend(model.__subclasses__())\n"
    "        if model.__pydantic_complete__:\n"
    "            found.append(model.__module__ + '.' + model.__qualname__)\n"
    "    return found\n"
    "def write():\n"
    "    open(out, 'w').write('\\n'.join(sys.modules))\n"
    "    open(out + '.models', 'w').write('\\n'.join(built()))\n"
    "atexit.register(write)\n"
    "sys.argv[0] = 'syncer'\n"
    "from syncer.cli.app import main\n"
    "main()\n"
)
#: The model of the whole configuration: only the commands that read every section build it
#: (``config check``, the daemon, ``status``); the others validate the sections they read.
WHOLE_CONFIG = "syncer.config.schema.Config"


def _imported(config: Path, env: dict[str, str], *args: str) -> Imports:
    loaded = config.parent / "modules.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            _RUN,
            str(loaded),
            "--config",
            str(config),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    present = set(loaded.read_text().split())
    chains = _chains(done.stderr)
    found = Imports({name: chain for name, chain in chains.items() if name in present})
    found.built_models = set(Path(f"{loaded}.models").read_text().split())
    return found


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
    assert WHOLE_CONFIG not in again.built_models  # [archive], [logging], [[accounts]] only
    if protocol == "pop3":
        assert _forbidden(again, ("imapclient",)) == []


def _archive_one(path: Path) -> None:
    """One normalized message in the archive (message id 1), for ``show 1`` to print."""
    from syncer.archive.store import ArchiveStore
    from syncer.model import RemoteMessage
    from syncer.sync.normalize import normalize_pending
    from tests.corpus import generate

    with ArchiveStore.open(f"sqlite:///{path}") as store:
        store.ensure_account("mail", "imap")
        raw = next(iter(generate(1, size_profile="small"))).raw
        store.archive_batch(
            "mail", "INBOX", 1, [RemoteMessage(folder="INBOX", uid=1, raw=raw)], None
        )
        normalize_pending(store, workers=1)


@pytest.mark.parametrize(
    "command", [["search", "budget", "--limit", "20"], ["show", "1"], ["status"]]
)
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
        _archive_one(tmp_path / "archive.db")
        modules = _imported(config, env, *command)
    finally:
        os.chdir(cwd)
    assert "syncer.cli.app" in modules
    assert _forbidden(modules, NEVER) == []
    if command[0] != "status":  # status draws its tables with rich, shows every job
        assert _forbidden(modules, NOT_TO_SEARCH_OR_SHOW + OTHER_STORE_MIXINS) == []
    else:
        assert _forbidden(modules, NOT_TO_STATUS) == []
    if command[0] == "search":
        assert _forbidden(modules, NOT_TO_SEARCH) == []
        # [archive] and [logging] only: no account, relay, web ... model is built.
        assert WHOLE_CONFIG not in modules.built_models
        assert not {m for m in modules.built_models if m.endswith(".AccountConfig")}

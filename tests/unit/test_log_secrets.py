"""No secret in any log line, whatever crashes where (issue 16, item 3).

Every job kind is made to crash with a password in a frame's local variables
and a registered secret (with a quote, a backslash and a non-ASCII character,
so that its escaped spellings differ) in the exception's message; each log
format (JSON lines, console) is rendered for real through :func:`configure` and
searched for both. structlog's traceback renderers show frame locals unless
told not to, and redaction used to run before the traceback was rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import structlog

from syncer import logs
from syncer.archive.engine import upgrade
from syncer.archive.store import ArchiveStore
from syncer.config.schema import parse_config
from syncer.daemon import kinds
from syncer.daemon.jobs import Runtime

#: Never registered: only a frame's locals hold it, and no renderer may print them.
LOCAL_SECRET = "s3cr3t-in-a-local-7f1c"
#: Registered, as passwords read from the secret sources are; it reaches the message.
REGISTERED = "p\"a'ss\\wörd-9b2e"

#: The function each job kind calls, patched to crash.
#: Where each job kind's work is (the kinds import it when a job runs).
CRASH_POINTS = {
    "sync": "syncer.sync.runner.sync_account",
    "normalize": "syncer.sync.normalize.normalize_pending",
    "retention": "syncer.retention.job.run_retention",
    "digest": "syncer.relay.digests.run_digest",
    "outbox": "syncer.relay.forwards.apply_forwards",
}

CONFIG: dict[str, Any] = {
    "accounts": [{"name": "a", "host": "127.0.0.1", "username": "me", "password_env": "X"}],
    "smtp": [{"name": "out", "host": "127.0.0.1", "security": "plain", "port": 25}],
    "digests": [
        {
            "name": "d",
            "query": "",
            "schedule": "0 7 * * *",
            "smtp": "out",
            "from": "s@example.com",
            "to": "me@example.com",
        }
    ],
    "retention": [{"name": "r", "match": "is:gone", "delete_after_days": 30}],
    "retention_settings": {"schedule": "30 3 * * *"},
}


def _crash(*_args: Any, **_kwargs: Any) -> NoReturn:
    password = LOCAL_SECRET  # in scope, as the IMAP password was in the sync's frames
    raise ValueError(f"greeting not ASCII after login as {REGISTERED!r}{password[:0]}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArchiveStore]:
    url = f"sqlite:///{tmp_path}/a.db"
    upgrade(url)
    with ArchiveStore.open(url, threads=0) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


def test_every_job_kind_is_covered() -> None:
    assert set(kinds.JOB_KINDS) == set(CRASH_POINTS)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_no_crash_of_any_job_kind_logs_a_secret(
    as_json: bool,
    store: ArchiveStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.register_secret(REGISTERED)
    for name in CRASH_POINTS.values():
        monkeypatch.setattr(name, _crash)
    config = parse_config(CONFIG, path=Path("/s.toml"))
    runtime = Runtime(config=config, store=store, holder="here:1")
    logs.configure(json=as_json, level="debug")

    specs = kinds.job_specs(config)
    assert {spec.kind for spec in specs} == set(CRASH_POINTS)
    for spec in specs:
        assert spec.target(runtime, *spec.args) == "failed", spec.id
    try:
        _crash()
    except ValueError:
        logging.getLogger("imapclient").exception("a library logs a crash")

    rendered = capsys.readouterr().err
    assert rendered.count("job.crashed") == len(specs)
    assert "Traceback" in rendered or '"exception"' in rendered
    assert "greeting not ASCII" in rendered
    assert LOCAL_SECRET not in rendered
    for spelling in logs._spellings(REGISTERED):
        assert spelling not in rendered, spelling

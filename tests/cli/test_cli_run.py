"""`syncer run --once`, the jobs part of `syncer status`, and schedules in `config check`,
without a mail server (an account on a closed port fails at once).
"""

from __future__ import annotations

import socket
from datetime import datetime

from tzlocal import get_localzone

from syncer.archive.store import ArchiveStore
from tests.cli.conftest import Syncer

UNREACHABLE = """
[[accounts]]
name = "{name}"
host = "127.0.0.1"
port = {port}
security = "plain"
allow_insecure = true
username = "u"
password_env = "PW"
retries = 0
{extra}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again when the block ends: connections are refused


def _config(cli: Syncer, *accounts: tuple[str, str], head: str = "") -> None:
    port = _closed_port()
    body = "".join(UNREACHABLE.format(name=n, port=port, extra=x) for n, x in accounts)
    cli.write_config(f'[archive]\nurl = "sqlite:///archive.db"\n{head}{body}')
    assert cli("init").exit_code == 0


def test_run_once_with_nothing_to_do_exits_0(syncer_cli: Syncer) -> None:
    assert syncer_cli("init").exit_code == 0
    assert syncer_cli("run", "--once").exit_code == 0


def test_run_once_runs_every_account_and_exits_1_when_one_fails(syncer_cli: Syncer) -> None:
    _config(syncer_cli, ("a", 'every = "1h"'), ("b", 'schedule = "0 3 * * *"'))
    result = syncer_cli("run", "--once", "--worker", "node-7", env={"PW": "x"})
    assert result.exit_code == 1
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path}/archive.db") as store:
        for account in ("a", "b"):
            (run,) = store.runs(account)
            assert run.status == "failed" and "Connection refused" in (run.error or "")
            assert (run.worker or "").startswith("node-7:")


def test_run_once_skips_an_account_another_worker_holds(syncer_cli: Syncer) -> None:
    _config(syncer_cli, ("a", ""))
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path}/archive.db") as store:
        store.acquire_lease("account:a", "elsewhere:99", 600)
    result = syncer_cli("run", "--once", env={"PW": "x"})
    assert result.exit_code == 0, "skipped is not failed"
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path}/archive.db") as store:
        assert store.runs("a") == [], "a skipped job leaves no run record"


def test_status_shows_each_job_with_its_last_run_and_next_run(syncer_cli: Syncer) -> None:
    _config(syncer_cli, ("a", 'every = "1h"'), ("b", 'schedule = "30 2 * * 0"'))
    syncer_cli("run", "--once", env={"PW": "x"})
    data = syncer_cli.json("status")
    jobs = {job["job"]: job for job in data["jobs"]}
    assert jobs["sync:a"]["schedule"] == "every 1h" and jobs["sync:a"]["outcome"] == "failed"
    assert jobs["sync:a"]["last_run"]["status"] == "failed"
    assert jobs["sync:b"]["schedule"] == "cron 30 2 * * 0"
    upcoming = datetime.fromisoformat(jobs["sync:b"]["next_run"]).astimezone(get_localzone())
    assert (upcoming.strftime("%A"), upcoming.hour, upcoming.minute) == ("Sunday", 2, 30)
    assert jobs["sync:b"]["last_run"]["status"] == "failed"
    human = syncer_cli("status")
    assert human.exit_code == 0 and "sync:a" in human.stdout and "every 1h" in human.stdout


def test_config_check_reads_every_schedule_as_the_daemon_would(syncer_cli: Syncer) -> None:
    _config(syncer_cli, ("a", 'schedule = "61 * * * *"'))
    result = syncer_cli("config", "check", "--no-secrets")
    assert result.exit_code == 2
    assert f"Error: {syncer_cli.config_path.resolve()}: job sync:a: schedule '61 * * * *'" in (
        result.stderr
    )


def test_run_refuses_a_metrics_address_it_cannot_listen_on(syncer_cli: Syncer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _config(syncer_cli, head=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        result = syncer_cli("run")
    assert result.exit_code == 2
    assert f"metrics.listen: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_run_and_its_options_have_help(syncer_cli: Syncer) -> None:
    result = syncer_cli("run", "--help")
    assert result.exit_code == 0
    assert "--once" in result.stdout and "--worker" in result.stdout

"""The scheduler's pure parts and the runner's cooperative stop: durations, cron
weekdays, the job registry, due times, the job guard, and a sync asked to stop
after the batch in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncer.archive.engine import upgrade
from syncer.archive.leases import account_lease
from syncer.archive.store import ArchiveStore
from syncer.config.base import parse_duration
from syncer.config.schema import Config, parse_config
from syncer.daemon.jobs import JobKind, JobSpec, LastRun, Outcome, Runtime, Schedule, guarded
from syncer.daemon.kinds import JOB_KINDS, job_specs, register_kind
from syncer.daemon.scheduler import build_jobs, cron_trigger, cron_weekdays, first_run
from syncer.errors import ConfigError, LeaseHeld
from syncer.sources.memory import ALL_CAPABILITIES, MemorySource
from syncer.sync.runner import sync_account

ACCOUNT = {"host": "imap.example.com", "username": "me", "password_env": "X"}


def _config(*accounts: dict[str, Any], **sections: Any) -> Config:
    return parse_config(
        {"accounts": [{**ACCOUNT, **a} for a in accounts], **sections}, path=Path("/s.toml")
    )


def _problems(**data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5s", 1.5)],
)
def test_durations_are_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_says_what_is_expected() -> None:
    (problem,) = _problems(accounts=[{**ACCOUNT, "name": "w", "every": "15 minutes"}])
    assert problem.startswith("accounts[0] (w).every: '15 minutes' is not a duration")
    assert '"15m"' in problem


def test_schedule_and_every_exclude_each_other() -> None:
    (problem,) = _problems(
        accounts=[{**ACCOUNT, "name": "w", "every": "15m", "schedule": "0 * * * *"}]
    )
    assert "schedule and every both say when to sync; keep one" in problem


def test_the_heartbeat_must_leave_room_within_the_lease() -> None:
    (problem,) = _problems(scheduler={"lease_ttl": "10s", "heartbeat": "6s"})
    assert "heartbeat (6s) must be at most half of lease_ttl (10s)" in problem
    assert parse_config({"scheduler": {"lease_ttl": "10s"}}).scheduler.heartbeat_seconds == 2


def test_metrics_listen_is_host_and_port() -> None:
    (problem,) = _problems(metrics={"listen": "9108"})
    assert problem.startswith('metrics.listen: expected "host:port"')
    assert parse_config({"metrics": {"listen": "[::1]:9108"}}).metrics.address == ("::1", 9108)


# ---------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("cron", "apscheduler"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("0-6", "*"),
    ],
)
def test_cron_weekdays_keep_their_cron_meaning(cron: str, apscheduler: str) -> None:
    assert cron_weekdays(cron) == apscheduler


@pytest.mark.parametrize("bad", ["8", "5-1", "funday", "*/0"])
def test_bad_cron_weekdays_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        cron_weekdays(bad)


def test_cron_zero_is_sunday_as_in_crontab() -> None:
    monday = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    fire = cron_trigger("0 3 * * 0", UTC).get_next_fire_time(None, monday)
    assert fire == datetime(2024, 1, 7, 3, 0, tzinfo=UTC)
    assert fire.strftime("%A") == "Sunday"


def test_each_account_gets_a_sync_job_on_its_schedule_or_the_default_interval() -> None:
    config = _config(
        {"name": "a", "schedule": "*/5 * * * *"},
        {"name": "b", "every": "2h"},
        {"name": "c"},
        scheduler={"default_every": "45m"},
    )
    specs = {spec.id: spec for spec in job_specs(config)}
    assert list(specs) == ["sync:a", "sync:b", "sync:c", "normalize"]
    assert specs["sync:a"].schedule == Schedule(cron="*/5 * * * *")
    assert specs["sync:b"].schedule.describe() == "every 2h"
    assert specs["sync:c"].schedule == Schedule(every=2700)
    assert specs["sync:a"].args == ("a",) and specs["sync:a"].kind == "sync"
    assert specs["normalize"].schedule == Schedule(every=300), "[scheduler] normalize_every"


def test_a_schedule_apscheduler_cannot_read_is_a_config_error_naming_the_job() -> None:
    with pytest.raises(ConfigError) as info:
        build_jobs(_config({"name": "a", "schedule": "61 * * * *"}))
    (problem,) = info.value.problems
    assert problem.startswith("/s.toml: job sync:a: schedule '61 * * * *': ")


def test_an_interval_job_is_due_one_interval_after_its_last_run() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert first_run(900, None, now) == now
    recent = LastRun(
        started_at=now - timedelta(minutes=5), finished_at=None, status="ok", error=None
    )
    assert first_run(900, recent, now) == now + timedelta(minutes=10)
    overdue = replace(recent, started_at=now - timedelta(hours=5))
    assert first_run(900, overdue, now) == now


def _noop(runtime: Runtime) -> Outcome:
    return "ok"


def test_a_new_job_kind_is_one_registry_entry() -> None:
    def specs(config: Config) -> Iterator[JobSpec]:
        yield JobSpec("later", "later", _noop, (), Schedule(every=60))

    register_kind(JobKind("later", specs, once_order=50))
    try:
        ids = [spec.id for spec in job_specs(_config({"name": "a"}))]
        assert ids == ["sync:a", "normalize", "later"], "syncs first, then by once_order"
        with pytest.raises(ValueError, match="registered twice"):
            register_kind(JobKind("later", specs))
    finally:
        del JOB_KINDS["later"]


# ---------------------------------------------------------------------------- running jobs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArchiveStore]:
    url = f"sqlite:///{tmp_path}/a.db"
    upgrade(url)
    with ArchiveStore.open(url, threads=0) as opened:
        yield opened


def test_the_guard_turns_a_crash_into_a_failed_outcome_and_skips_after_a_stop(
    store: ArchiveStore,
) -> None:
    runtime = Runtime(config=_config(), store=store, holder="here:1")

    def crash() -> Outcome:
        raise RuntimeError("boom")

    with capture_logs() as logs:
        assert guarded("x", runtime, crash) == "failed"
    (event,) = [e for e in logs if e["event"] == "job.crashed"]
    assert event["error"] == "RuntimeError: boom"
    assert runtime.running_jobs() == [] and runtime.wait_idle(0)

    runtime.stop.set()
    assert guarded("x", runtime, lambda: pytest.fail("must not run")) == "stopped"


class _StopAfterFirstBatch:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def planned(self, messages: int, size: int | None) -> None:
        pass

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        pass

    def advanced(self, messages: int, size: int) -> None:
        self.stop.set()  # the heartbeat right after this batch's commit sees it


def test_a_stop_request_ends_the_sync_after_the_committed_batch(store: ArchiveStore) -> None:
    server = MemorySource(ALL_CAPABILITIES)
    for n in range(30):
        server.append("INBOX", f"Message-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode())
    account = _config({"name": "acct", "batch_messages": 10}).accounts[0]
    stop = threading.Event()

    summary = sync_account(
        account,
        store,
        connect=lambda _acc: server,
        progress=_StopAfterFirstBatch(stop),
        stop=stop,
    )

    assert not summary.ok and summary.error is not None
    assert summary.error.startswith("stopped on request after the last committed batch")
    assert store.count_entries("acct") == 10, "the first batch is committed, no more"
    assert store.lease_holder("account:acct") is None, "the lease is released"
    (run,) = store.runs("acct")
    assert run.status == "failed" and run.worker is not None

    done = sync_account(account, store, connect=lambda _acc: server)
    assert done.ok and done.new == 20


def test_the_lease_is_renewed_in_the_background_and_its_loss_is_noticed(
    store: ArchiveStore,
) -> None:
    with account_lease(store, "acct", wait=False, ttl=2, renew_every=0.05) as lease:
        first = store.leases()[0].heartbeat_at
        time.sleep(0.3)
        assert store.leases()[0].heartbeat_at > first, "renewed without a heartbeat call"
        # It expires and another worker takes it: the next heartbeat must fail the run.
        store.release_lease(lease.name, lease.holder)
        store.acquire_lease(lease.name, "elsewhere:1", 60)
        time.sleep(0.3)
        with pytest.raises(LeaseHeld):
            lease()
    assert store.lease_holder("account:acct") == "elsewhere:1", "not released: not ours"

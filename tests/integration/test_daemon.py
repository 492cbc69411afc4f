"""`syncer run` as a daemon against a real Dovecot: interval jobs, SIGTERM during a
large sync, SIGHUP with a broken configuration, and the metrics endpoint.

Each test starts the daemon as a subprocess (as systemd would), reads its JSON log
lines, and kills whatever is left at teardown.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from syncer.archive.models import outbox
from syncer.archive.store import ArchiveStore
from tests.integration._daemon import (
    Daemon,
    account_toml,
    daemons,
    free_port,
    message,
    syncer_cli,
    wait_until,
    write_config,
)
from tests.servers.dovecot import DovecotServer, MailUser

__all__ = ["daemons"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration


def _unthrottle(config: Path) -> None:
    """Drop the download throttle, so the re-run after a test's slow sync is quick."""
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(x for x in lines if not x.startswith("max_bytes_per_second")))


def _store(tmp_path: Path) -> ArchiveStore:
    return ArchiveStore.open(f"sqlite:///{tmp_path}/archive.db")


def _entries(tmp_path: Path) -> int:
    with _store(tmp_path) as store:
        return store.count_entries("mail")


def _setup(
    tmp_path: Path,
    server: DovecotServer,
    user: MailUser,
    *,
    scheduler: dict[str, object] | None = None,
    metrics: str | None = None,
    **account: object,
) -> tuple[Path, dict[str, str]]:
    config = write_config(
        tmp_path / "syncer.toml",
        [account_toml(server, user, "mail", **account)],
        scheduler=scheduler,
        metrics=metrics,
    )
    env = {"PW_MAIL": user.password}
    init = syncer_cli(config, env, "init")
    assert init.returncode == 0, init.stderr
    return config, env


def test_an_interval_job_runs_again_and_again_and_picks_up_new_mail(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    for n in range(3):
        dovecot.append(dovecot_user.name, "INBOX", message(n))
    config, env = _setup(tmp_path, dovecot, dovecot_user, every="2s")
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    wait_until("the first 3 messages", lambda: _entries(tmp_path) == 3, 20)

    for n in range(3, 5):
        dovecot.append(dovecot_user.name, "Archive", message(n))
    wait_until("the 2 messages appended while it runs", lambda: _entries(tmp_path) == 5, 10)
    daemon.wait_event("run.completed", timeout=10, count=3)

    with _store(tmp_path) as store:
        runs = store.runs("mail", limit=50)
    assert len(runs) >= 3 and all(r.status == "ok" for r in runs)
    starts = sorted(r.started_at for r in runs)
    assert starts == sorted(set(starts)), "one run at a time"

    status = syncer_cli(config, env, "status", "--json")
    job, normalize = json.loads(status.stdout)["jobs"]
    assert normalize["job"] == "normalize" and normalize["recorded"] is False
    assert job["job"] == "sync:mail" and job["schedule"] == "every 2s"
    assert job["outcome"] == "ok" and job["next_run"] is not None

    assert daemon.stop() == 0
    assert daemon.events("daemon.stopped")


def test_sigterm_during_a_large_sync_stops_after_the_batch_and_exits_0(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    total = 3000
    dovecot.seed(dovecot_user.name, (("INBOX", message(n, 4000), (), None) for n in range(total)))
    # About 12 MB at 3 MB/s: the sync takes ~4 s, in batches of 100 messages (~0.15 s each).
    config, env = _setup(
        tmp_path,
        dovecot,
        dovecot_user,
        scheduler={"grace_period": "10s"},
        batch_messages=100,
        max_bytes_per_second=3_000_000,
    )
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    wait_until("a first committed batch", lambda: _entries(tmp_path) > 0, 30, every=0.05)

    asked = time.monotonic()
    assert daemon.stop(timeout=15) == 0
    took = time.monotonic() - asked
    assert took < 10, f"exited after {took:.1f} s, beyond the 10 s grace period"
    assert not daemon.events("daemon.grace_expired"), "the batch in flight should have ended"

    with _store(tmp_path) as store:
        partial = store.count_entries("mail")
        (run,) = store.runs("mail")
        assert store.leases() == [], "the lease is released"
    assert 0 < partial < total, "stopped mid-sync"
    assert run.status == "failed" and "stopped on request" in (run.error or "")

    verify = syncer_cli(config, env, "verify")
    assert verify.returncode == 0, verify.stdout
    _unthrottle(config)
    rerun = syncer_cli(config, env, "sync", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)[0]["new"] == total - partial
    check = syncer_cli(config, env, "check")
    assert check.returncode == 0, check.stdout
    assert _entries(tmp_path) == total


def test_past_the_grace_period_it_exits_0_anyway_and_the_next_run_redoes_the_batch(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    for n in range(3):
        dovecot.append(dovecot_user.name, "INBOX", message(n, 60_000))
    # One message per batch at 20 kB/s: each batch takes 3 s, far beyond the grace period.
    config, env = _setup(
        tmp_path,
        dovecot,
        dovecot_user,
        scheduler={"grace_period": "1s"},
        batch_messages=1,
        max_bytes_per_second=20_000,
    )
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    daemon.wait_event("run.started", timeout=15)
    time.sleep(0.5)

    asked = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - asked < 6
    assert daemon.events("daemon.grace_expired")
    with _store(tmp_path) as store:
        assert store.leases() == [], "the lease is released even so"
        assert store.count_entries("mail") == 0
        assert store.runs("mail")[0].status == "running"

    _unthrottle(config)
    rerun = syncer_cli(config, env, "sync", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)[0]["new"] == 3
    with _store(tmp_path) as store:
        done, abandoned = store.runs("mail")
    assert done.status == "ok"
    assert abandoned.status == "failed" and (abandoned.error or "").startswith("abandoned")


def test_run_once_syncs_and_exits_and_stops_cleanly_on_sigterm(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    dovecot.seed(dovecot_user.name, (("INBOX", message(n, 4000), (), None) for n in range(600)))
    config, env = _setup(
        tmp_path, dovecot, dovecot_user, batch_messages=50, max_bytes_per_second=600_000
    )
    # `run --once` logs only warnings by default (cron mails nothing); this test reads
    # its info events.
    config.write_text(config.read_text() + '\n[logging]\nlevel = "info"\n')
    once = Daemon(config, env).start("--once")
    daemons.append(once)
    wait_until("a first committed batch", lambda: _entries(tmp_path) > 0, 30, every=0.05)
    assert once.stop(timeout=15) == 0
    assert 0 < _entries(tmp_path) < 600

    _unthrottle(config)
    again = Daemon(config, env).start("--once")
    daemons.append(again)
    assert again.proc is not None and again.proc.wait(60) == 0, again.log_tail()
    assert _entries(tmp_path) == 600
    (done,) = again.events("daemon.once_completed")
    assert done["ok"] == 2 and done["failed"] == []  # sync:mail, normalize


def test_sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_is_taken(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    dovecot.append(dovecot_user.name, "INBOX", message(1))
    config, env = _setup(tmp_path, dovecot, dovecot_user, every="2s")
    good = config.read_text()
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    wait_until("the first message", lambda: _entries(tmp_path) == 1, 20)

    config.write_text(good + "\n[[accounts]\nthis is = not TOML\n")
    daemon.signal(signal.SIGHUP)
    (failed,) = daemon.wait_event("config.reload_failed", timeout=10)
    assert "not valid TOML" in failed["error"] and "\n" not in failed["error"]
    assert daemon.alive()

    dovecot.append(dovecot_user.name, "INBOX", message(2))
    wait_until("mail synced on the old configuration", lambda: _entries(tmp_path) == 2, 10)

    config.write_text(good.replace('every = "2s"', 'every = "1s"'))
    daemon.signal(signal.SIGHUP)
    daemon.wait_event("config.reloaded", timeout=10)
    assert daemon.alive()
    assert daemon.stop() == 0


METRICS = (
    "syncer_messages_archived_total",
    "syncer_bytes_archived_total",
    "syncer_sync_duration_seconds",
    "syncer_sync_failures_total",
    "syncer_outbox_depth",
    "syncer_lease_holder",
    "syncer_last_run_timestamp",
)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_metrics_endpoint_answers_with_every_metric_and_healthz(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    for n in range(2):
        dovecot.append(dovecot_user.name, "INBOX", message(n))
    listen = f"127.0.0.1:{free_port()}"
    config, env = _setup(tmp_path, dovecot, dovecot_user, metrics=listen, every="1h")
    with _store(tmp_path) as store:  # something for the archive-side gauges to show
        store.acquire_lease("account:elsewhere", "otherhost:4242", 600)
        with store.engine.begin() as conn:
            conn.execute(
                outbox.insert().values(
                    idem_key="k1",
                    kind="digest",
                    smtp="out",
                    envelope_from="a@example.com",
                    recipients="[]",
                    body=b"x",
                    status="pending",
                )
            )
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    daemon.wait_event("run.completed", timeout=20)

    status, body = wait_until("/metrics", lambda: _get(f"http://{listen}/metrics"), 10)
    assert status == 200
    for name in METRICS:
        assert name in body, f"{name} missing from /metrics"
    assert 'syncer_messages_archived_total{account="mail"} 2.0' in body
    assert 'syncer_lease_holder{holder="otherhost:4242",lease="account:elsewhere"} 1.0' in body
    assert "syncer_outbox_depth 1.0" in body
    assert 'syncer_last_run_timestamp{job="sync:mail"}' in body
    assert _get(f"http://{listen}/healthz") == (200, "ok\n")
    assert _get(f"http://{listen}/nope")[0] == 404
    assert daemon.stop() == 0

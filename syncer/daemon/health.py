"""Is the archive current? Alerting that catches a silently stopped archive.

Why: an archiver whose syncs fail (a changed password, a server gone) keeps
answering 200 and prints nothing under a timer; people find out weeks later.
Each account's last *successful* sync (from the archive's run records, so every
worker and ``syncer run --once`` count) is compared with ``[monitoring]
stale_after`` (default: three of the account's intervals). What this decides is
shown by ``/healthz`` (503 with the reason), ``syncer status --check`` (the
Nagios exit codes 0/1/2) and the ``syncer_last_success_timestamp`` metric.

Public API: :class:`AccountHealth`, :func:`account_health`, :func:`nagios`,
:func:`sync_intervals`, :class:`Pinger` (``[monitoring] ping_url``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import structlog

from syncer.daemon.kinds import job_specs

if TYPE_CHECKING:
    from syncer.archive.admin_views import RunView
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config

log = structlog.get_logger(__name__)

State = Literal["ok", "warning", "critical"]
#: How many of an account's intervals may pass without a successful sync.
STALE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """One account's freshness: ``state`` and the ``reason`` shown to people."""

    account: str
    state: State
    reason: str
    last_success: datetime | None
    stale_after: float


def sync_intervals(config: Config) -> dict[str, float]:
    """Seconds between two scheduled syncs of each account (a cron schedule: the gap
    between its next two times)."""
    from syncer.daemon.scheduler import cron_trigger

    intervals: dict[str, float] = {}
    now = datetime.now(UTC)
    for spec in job_specs(config):
        if spec.kind != "sync":
            continue
        if spec.schedule.every is not None:
            intervals[spec.args[0]] = spec.schedule.every
            continue
        assert spec.schedule.cron is not None
        trigger = cron_trigger(spec.schedule.cron, UTC)
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
        intervals[spec.args[0]] = (second - first).total_seconds()
    return intervals


def account_health(
    config: Config,
    store: ArchiveStore,
    *,
    now: datetime | None = None,
) -> list[AccountHealth]:
    """Each configured account: critical when its last successful sync is older than
    ``stale_after`` (or never happened), warning when its latest run failed but the
    last success is still recent, ok otherwise."""
    now = now or datetime.now(UTC)
    intervals = sync_intervals(config)
    successes = store.last_successes()
    latest: dict[str, RunView] = {}
    for record in store.runs(limit=max(20, 4 * len(config.accounts))):
        latest.setdefault(record.account, record)
    result = []
    for account in config.accounts:
        name = account.name
        limit = config.monitoring.stale_after or STALE_INTERVALS * intervals.get(
            name, config.scheduler.default_every
        )
        last = successes.get(name)
        run = latest.get(name)
        failed = run is not None and run.status == "failed"
        if last is None:
            state: State = "critical"
            reason = f"{name}: never synced successfully"
        elif (now - last).total_seconds() > limit:
            state = "critical"
            stale = _ago(timedelta(seconds=limit))
            reason = f"{name}: last successful sync {_ago(now - last)} ago (stale after {stale})"
        elif failed:
            state = "warning"
            reason = f"{name}: the last sync failed; last success {_ago(now - last)} ago"
        else:
            state = "ok"
            reason = f"{name}: synced {_ago(now - last)} ago"
        if failed and state != "ok" and run is not None and run.error:
            reason += f" (last error: {run.error})"
        result.append(AccountHealth(name, state, reason, last, limit))
    return result


def nagios(healths: list[AccountHealth]) -> tuple[int, str]:
    """The Nagios plugin convention: (0 OK | 1 WARNING | 2 CRITICAL, one status line)."""
    worst = max((h.state for h in healths), key=("ok", "warning", "critical").index, default="ok")
    code = ("ok", "warning", "critical").index(worst)
    shown = [h.reason for h in healths if h.state == worst] or ["no accounts"]
    return code, f"SYNCER {worst.upper()} - " + "; ".join(shown)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


class Pinger:
    """Tells a healthchecks-style URL how each run went: GET ``ping_url`` after a success,
    ``ping_url/fail`` after a failure. A ping that fails is logged, never fatal: the
    monitor then sees no ping, which is what it alerts on."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def ping(self, ok: bool) -> None:
        import urllib.request

        url = self.url if ok else f"{self.url}/fail"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as reply:
                reply.read(1024)
        except OSError as exc:
            log.warning("monitoring.ping_failed", ok=ok, error=str(exc))
        else:
            log.info("monitoring.pinged", ok=ok)

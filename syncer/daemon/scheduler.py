"""When the jobs of ``syncer run`` run: APScheduler 3 triggers, and what ``status`` shows.

Public API:

- :func:`build_jobs`: every job the configuration asks for (the registry in
  :mod:`syncer.daemon.kinds`) with its APScheduler trigger, every schedule checked.
- :func:`first_run`: when an interval job is next due, from its last recorded run.
- :func:`jobs_status`: per job its last run, outcome and next run, computed from
  the configuration and ``sync_runs`` alone (no daemon needed), for ``syncer status``.

The process around these (signals, reload, grace period, ``--once``) is
:mod:`syncer.daemon.service`; the Prometheus endpoint is :mod:`syncer.daemon.metrics`.


Schedules: ``schedule`` is a five-field cron expression read with standard
cron weekday numbers (0 or 7 = Sunday), which are translated for APScheduler 3
(whose own numbering starts at Monday); unlike Vixie cron, a restricted day of
month *and* day of week must both match. ``every`` is an interval whose first
run is due one interval after the last recorded run (at once when overdue), so
a restart does not re-run everything and every worker agrees on the due time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncer.daemon.kinds import JOB_KINDS, job_specs
from syncer.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.daemon.jobs import JobSpec, LastRun

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def build_jobs(config: Config, timezone: Any = None) -> list[tuple[JobSpec, BaseTrigger]]:
    """The jobs with their APScheduler triggers (intervals start at the epoch; see
    :func:`first_run` for when they are due).

    :raises ConfigError: naming every job whose schedule APScheduler cannot read.
    """
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

    jobs: list[tuple[JobSpec, BaseTrigger]] = []
    problems: list[str] = []
    for spec in job_specs(config):
        if spec.schedule.cron is not None:
            try:
                jobs.append((spec, cron_trigger(spec.schedule.cron, timezone)))
            except ValueError as exc:
                problems.append(
                    f"{config.path}: job {spec.id}: schedule {spec.schedule.cron!r}: {exc}"
                )
        else:
            jobs.append((spec, IntervalTrigger(seconds=spec.schedule.every, timezone=timezone)))
    if problems:
        raise ConfigError(problems)
    return jobs


def cron_trigger(expr: str, timezone: Any = None) -> BaseTrigger:
    """A CronTrigger for a standard five-field cron expression (0 or 7 = Sunday).

    :raises ValueError: when a field is not valid.
    """
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected five fields, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=cron_weekdays(weekday),
        timezone=timezone,
    )


def cron_weekdays(spec: str) -> str:
    """A cron day-of-week field (``1-5``, ``0,6``, ``*/2``, ``mon-fri``) as APScheduler 3
    reads it: day names (``mon,tue,wed,thu,fri``), since its numbers start at Monday.

    :raises ValueError: for a field that is not a cron day of week.
    """
    if spec in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in spec.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in day of week {part!r}")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _weekday(first), _weekday(last)
            if high < low:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            low = _weekday(span)
            high = 6 if step else low
        days.update(d % 7 for d in range(low, high + 1, step or 1))
    if days == set(range(7)):
        return "*"
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(token.lower())
    raise ValueError(f"{token!r} is not a day of week (0-7 or sun..sat)")


def first_run(every: float, last: LastRun | None, now: datetime) -> datetime:
    """When an interval job is due: one interval after its last run started, or now."""
    if last is None:
        return now
    return max(now, last.started_at + timedelta(seconds=every))


def next_run(
    spec: JobSpec, last: LastRun | None, now: datetime, timezone: Any = None
) -> datetime | None:
    """When the job runs next, as a daemon started now would schedule it (None: never)."""
    if spec.schedule.every is not None:
        return first_run(spec.schedule.every, last, now)
    assert spec.schedule.cron is not None
    fire: datetime | None = cron_trigger(spec.schedule.cron, timezone).get_next_fire_time(None, now)
    return fire


def jobs_status(
    config: Config, store: ArchiveStore, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per job: ``job``, ``kind``, ``schedule``, ``last_run`` (started_at, finished_at,
    status, error, worker; None if never), ``outcome`` and ``next_run`` (ISO 8601).

    Computed from the configuration and the archive only, so it works whether or
    not a daemon is running; ``next_run`` is when one would run the job.
    """
    from tzlocal import get_localzone

    now = now or datetime.now(UTC)
    timezone = get_localzone()
    result: list[dict[str, Any]] = []
    for spec in job_specs(config):
        last = JOB_KINDS[spec.kind].last_run(store, spec)
        try:
            upcoming = next_run(spec, last, now, timezone)
            problem = None
        except ValueError as exc:
            upcoming, problem = None, f"schedule not understood: {exc}"
        result.append(
            {
                "job": spec.id,
                "kind": spec.kind,
                "schedule": spec.schedule.describe(),
                "last_run": last.to_dict() if last else None,
                "outcome": last.status if last else None,
                "recorded": JOB_KINDS[spec.kind].records_runs,
                "next_run": upcoming.astimezone(UTC).isoformat() if upcoming else None,
                **({"problem": problem} if problem else {}),
            }
        )
    return result

"""The kinds of job ``syncer run`` runs, and the registry that lists them.

Job kinds: ``sync:<account>`` (:func:`syncer.sync.runner.sync_account` under
the account's lease, on the account's ``schedule`` or ``every``),
``normalize`` (:func:`syncer.sync.normalize.normalize_pending` under the lease
``normalize``, every ``[scheduler] normalize_every``; its runs are not recorded
in ``sync_runs``), ``retention`` (:func:`syncer.retention.job.run_retention`
under the lease ``retention``, on ``[retention_settings] schedule``; audited, not
in ``sync_runs``; never forced), ``digest:<name>`` (:func:`syncer.relay.digests.run_digest`
under the lease ``digest:<name>``, on each digest's ``schedule``; its last run is
its last queued period) and ``outbox`` (the forward rules, then
:func:`syncer.relay.outbox.flush_outbox`, under the lease ``outbox``, every
``[outbox] flush_every``, when an SMTP server is configured).

Adding a job kind: write a module-level target ``my_job(runtime, *args) -> Outcome``
that runs its work through :func:`~syncer.daemon.jobs.guarded`, a function that
yields its :class:`~syncer.daemon.jobs.JobSpec` values from the configuration,
and one :func:`register_kind` call at the bottom of this module. The daemon,
``run --once`` and ``syncer status`` pick it up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog

from syncer.archive.leases import Lease
from syncer.daemon.jobs import JobKind, JobSpec, LastRun, Outcome, Runtime, Schedule, guarded
from syncer.errors import ConfigError, LeaseHeld, Stopped

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config

log = structlog.get_logger(__name__)


JOB_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> JobKind:
    if kind.name in JOB_KINDS:
        raise ValueError(f"job kind {kind.name!r} is registered twice")
    JOB_KINDS[kind.name] = kind
    return kind


def job_specs(config: Config) -> list[JobSpec]:
    """Every job the configuration asks for, in ``--once`` order (syncs first)."""
    kinds = sorted(JOB_KINDS.values(), key=lambda k: k.once_order)
    return [spec for kind in kinds for spec in kind.specs(config)]


@contextmanager
def _holding(runtime: Runtime, name: str) -> Iterator[Lease]:
    """Hold the lease ``name`` with the configured TTL and heartbeat, known to the runtime
    (so a stopping daemon can release it).

    :raises LeaseHeld: when another live worker holds it.
    """
    from syncer.sync.runner import job_lease

    with (
        job_lease(runtime.store, runtime.config, name, holder=runtime.holder) as lease,
        runtime.holding(name),
    ):
        yield lease


def _skipped(exc: LeaseHeld) -> Outcome:
    log.info("job.skipped", reason=exc.message)
    return "skipped"


def _stopped(event: str, exc: Stopped) -> Outcome:
    log.info(event, reason=str(exc))
    return "stopped"


# --------------------------------------------------------------------------- sync


def sync_job(runtime: Runtime, account_name: str) -> Outcome:
    """The target of ``sync:<account>``: one sync under the account's lease.

    Quietly skipped (``job.skipped`` at info, no ``sync_runs`` row) when another
    live worker holds the lease; stopped after the batch in flight once
    ``runtime.stop`` is set.
    """
    return guarded(f"sync:{account_name}", runtime, lambda: _sync(runtime, account_name))


def _sync(runtime: Runtime, account_name: str) -> Outcome:
    from syncer.sync.runner import sync_account

    try:
        account = runtime.config.account(account_name)
    except ConfigError:
        log.info("job.skipped", reason="the account is no longer configured")
        return "skipped"
    if not runtime.should_poll(account.name):
        log.info("job.skipped", reason="push is connected; this poll is thinned out")
        return "skipped"
    try:
        with _holding(runtime, f"account:{account.name}") as lease:
            summary = sync_account(account, runtime.store, lease=lease, stop=runtime.stop)
    except LeaseHeld as exc:
        return _skipped(exc)
    outcome: Outcome = "ok" if summary.ok else "stopped" if runtime.stop.is_set() else "failed"
    runtime.observer.sync_finished(summary, outcome)
    return outcome


def _sync_specs(config: Config) -> Iterator[JobSpec]:
    for account in config.accounts:
        schedule = (
            Schedule(cron=account.schedule)
            if account.schedule is not None
            else Schedule(every=account.every or config.scheduler.default_every)
        )
        yield JobSpec(f"sync:{account.name}", "sync", sync_job, (account.name,), schedule)


def _last_sync(store: ArchiveStore, spec: JobSpec) -> LastRun | None:
    runs = store.runs(spec.args[0], limit=1)
    return LastRun.of(runs[0]) if runs else None


# --------------------------------------------------------------------------- normalize


def normalize_job(runtime: Runtime) -> Outcome:
    """The target of ``normalize``: derive what the syncs archived since (one worker at
    a time, under the lease ``normalize``); stops after the batch in flight on a stop."""
    return guarded("normalize", runtime, lambda: _normalize(runtime))


def _normalize(runtime: Runtime) -> Outcome:
    from syncer.sync.normalize import normalize_pending

    try:
        with _holding(runtime, "normalize") as lease:
            beat = lease.heartbeat(runtime.stop)
            normalize_pending(
                runtime.store,
                progress=lambda _done, _total: beat(),
                verify_dkim=runtime.config.archive.verify_dkim,
            )
    except LeaseHeld as exc:
        return _skipped(exc)
    except Stopped as exc:
        return _stopped("normalize.stopped", exc)
    return "ok"


def _normalize_specs(config: Config) -> Iterator[JobSpec]:
    every = config.scheduler.normalize_every
    yield JobSpec("normalize", "normalize", normalize_job, (), Schedule(every=every))


# --------------------------------------------------------------------------- retention


def retention_job(runtime: Runtime) -> Outcome:
    """The target of ``retention``: :func:`~syncer.retention.job.run_retention`, never
    forced (a run that would delete more than ``max_delete_share`` fails and deletes
    nothing), stoppable after a committed batch."""
    return guarded("retention", runtime, lambda: _retention(runtime))


def _retention(runtime: Runtime) -> Outcome:
    from syncer.retention.job import LEASE as RETENTION_LEASE
    from syncer.retention.job import run_retention

    try:
        with runtime.holding(RETENTION_LEASE):
            _plan, result = run_retention(
                runtime.store,
                runtime.config,
                holder=runtime.holder,
                actor=runtime.holder,
                stop=runtime.stop,
            )
    except LeaseHeld as exc:
        return _skipped(exc)
    except Stopped as exc:
        return _stopped("retention.stopped", exc)
    return "ok" if not result.problems else "failed"


def _retention_specs(config: Config) -> Iterator[JobSpec]:
    schedule = config.retention_settings.schedule
    if schedule and config.retention:
        yield JobSpec("retention", "retention", retention_job, (), Schedule(cron=schedule))


# --------------------------------------------------------------------------- relay


def digest_job(runtime: Runtime, name: str) -> Outcome:
    """The target of ``digest:<name>``: queue the digest's period, under its lease."""
    return guarded(f"digest:{name}", runtime, lambda: _digest(runtime, name))


def _digest(runtime: Runtime, name: str) -> Outcome:
    from syncer.relay.digests import digest_config, run_digest

    try:
        digest = digest_config(runtime.config, name)
    except ConfigError:
        log.info("job.skipped", reason="the digest is no longer configured")
        return "skipped"
    try:
        with _holding(runtime, f"digest:{name}"):
            run_digest(runtime.store, digest)
    except LeaseHeld as exc:
        return _skipped(exc)
    return "ok"


def _digest_specs(config: Config) -> Iterator[JobSpec]:
    for digest in config.digests:
        schedule = Schedule(cron=digest.schedule)
        yield JobSpec(f"digest:{digest.name}", "digest", digest_job, (digest.name,), schedule)


def _last_digest(store: ArchiveStore, spec: JobSpec) -> LastRun | None:
    """The digest's last queued period, as a run record for ``syncer status``."""
    state = store.job_cursor("digest", spec.args[0])
    if state is None or state.last_success_at is None:
        return None
    at = state.last_success_at
    return LastRun(started_at=at, finished_at=at, status="ok", error=None)


def outbox_job(runtime: Runtime) -> Outcome:
    """The target of ``outbox``: apply the forward rules, then send what is due."""
    return guarded("outbox", runtime, lambda: _outbox(runtime))


def _outbox(runtime: Runtime) -> Outcome:
    from syncer.relay.forwards import apply_forwards
    from syncer.relay.outbox import LEASE as OUTBOX_LEASE
    from syncer.relay.outbox import flush_outbox

    config = runtime.config
    try:
        with _holding(runtime, OUTBOX_LEASE) as lease:
            beat = lease.heartbeat(runtime.stop)
            apply_forwards(runtime.store, config.forwards, heartbeat=beat)
            result = flush_outbox(runtime.store, config, heartbeat=beat)
    except LeaseHeld as exc:
        return _skipped(exc)
    except Stopped as exc:
        return _stopped("outbox.stopped", exc)
    return "ok" if result.ok else "failed"


def _outbox_specs(config: Config) -> Iterator[JobSpec]:
    if config.smtp:
        yield JobSpec("outbox", "outbox", outbox_job, (), Schedule(every=config.outbox.flush_every))


register_kind(JobKind("sync", _sync_specs, last_run=_last_sync, once_order=0))
register_kind(JobKind("normalize", _normalize_specs, once_order=10, records_runs=False))
register_kind(JobKind("retention", _retention_specs, once_order=20, records_runs=False))
register_kind(JobKind("digest", _digest_specs, last_run=_last_digest, once_order=40))
register_kind(JobKind("outbox", _outbox_specs, once_order=50, records_runs=False))

"""Running retention under its lease: ``syncer retention apply`` and the ``retention`` job
of ``syncer run`` ([retention_settings] schedule).

Why a module of its own: both ways of applying the policies must do the same
thing -- record policy changes, take the lease ``retention`` (one run at a
time across every worker), build the plan, apply it with the lease renewed
after every batch -- and the scheduler registers only the kind
(:func:`retention_specs`); the job target is :func:`retention_job`. A
scheduled run is never forced: one that would delete more than
``max_delete_share`` is logged (``job.failed``) and deletes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog

from syncer.errors import LeaseHeld

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.daemon.scheduler import JobSpec, Outcome, Runtime
    from syncer.retention.policy import ApplyResult, RetentionPlan

log = structlog.get_logger(__name__)

#: The lease that makes retention runs one at a time.
LEASE = "retention"


class RetentionStopped(Exception):
    """Raised after a committed batch once a stop was asked (the daemon is shutting down)."""


def run_retention(
    store: ArchiveStore,
    config: Config,
    *,
    holder: str,
    actor: str,
    force: bool = False,
    stop: threading.Event | None = None,
) -> tuple[RetentionPlan, ApplyResult]:
    """Record policy changes, then plan and apply under the lease ``retention``.

    :raises LeaseHeld: when another run holds the lease.
    :raises RetentionRefused: when the run deletes too large a share, unforced.
    :raises RetentionStopped: when ``stop`` was set (after the batch in flight).
    """
    from syncer.retention.expunge import ServerExpunger
    from syncer.retention.policy import apply_plan, build_plan, record_policies
    from syncer.sync.runner import hold_lease

    record_policies(store, config.retention, actor=actor)
    with hold_lease(
        store,
        LEASE,
        wait=False,
        ttl=config.scheduler.lease_ttl,
        holder=holder,
        renew_every=config.scheduler.heartbeat_seconds,
    ) as lease:

        def heartbeat() -> None:
            lease()
            if stop is not None and stop.is_set():
                raise RetentionStopped("stopped on request after the last committed batch")

        plan = build_plan(store, config.retention)
        result = apply_plan(
            store,
            plan,
            config=config,
            force=force,
            actor=actor,
            expunger=ServerExpunger(config, holder=holder),
            heartbeat=heartbeat,
        )
    return plan, result


def retention_specs(config: Config) -> Iterator[JobSpec]:
    """One ``retention`` job when ``[retention_settings] schedule`` is set."""
    from syncer.daemon.scheduler import JobSpec, Schedule

    schedule = config.retention_settings.schedule
    if schedule and config.retention:
        yield JobSpec("retention", "retention", retention_job, (), Schedule(cron=schedule))


def retention_job(runtime: Runtime) -> Outcome:
    """The target of ``retention``: :func:`run_retention`, unforced, stoppable."""
    from syncer.daemon.scheduler import guarded

    return guarded("retention", runtime, lambda: _apply(runtime))


def _apply(runtime: Runtime) -> Outcome:
    try:
        with runtime.holding(LEASE):
            _plan, result = run_retention(
                runtime.store,
                runtime.config,
                holder=runtime.holder,
                actor=runtime.holder,
                stop=runtime.stop,
            )
    except LeaseHeld as exc:
        log.info("job.skipped", reason=exc.message)
        return "skipped"
    except RetentionStopped as exc:
        log.info("retention.stopped", reason=str(exc))
        return "stopped"
    return "ok" if not result.problems else "failed"

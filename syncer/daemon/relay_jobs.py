"""The relay's jobs in ``syncer run``: ``digest:<name>`` and ``outbox``.

Why a module of its own: the scheduler only registers the kinds
(:func:`digest_specs`, :func:`outbox_specs`); the targets live here and import
the scheduler only inside their functions.

* ``digest:<name>``, on each digest's cron ``schedule``, under the lease
  ``digest:<name>``: queues one digest (:func:`syncer.relay.digests.run_digest`).
  Its last run, as ``syncer status`` shows it, is the digest's last queued
  period (``job_state``).
* ``outbox``, every ``[outbox] flush_every`` (a minute), under the lease
  ``outbox``: applies the forward rules to what was archived (and normalized)
  since, then sends everything due (:func:`syncer.relay.outbox.flush_outbox`). It
  exists when any ``[[smtp]]`` server is configured. With ``syncer run --once``
  it runs after the digests, so what they queued is sent in the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog

from syncer.errors import LeaseHeld

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.daemon.scheduler import JobSpec, Outcome, Runtime

log = structlog.get_logger(__name__)


def digest_specs(config: Config) -> Iterator[JobSpec]:
    """One ``digest:<name>`` job per ``[[digests]]`` entry, on its schedule."""
    from syncer.daemon.scheduler import JobSpec, Schedule

    for digest in config.digests:
        yield JobSpec(
            f"digest:{digest.name}",
            "digest",
            digest_job,
            (digest.name,),
            Schedule(cron=digest.schedule),
        )


def last_digest(store: ArchiveStore, spec: JobSpec) -> dict[str, Any] | None:
    """The digest's last queued period, as a run record for ``syncer status``."""
    state = store.job_cursor("digest", spec.args[0])
    if state is None or state.last_success_at is None:
        return None
    at = state.last_success_at.isoformat()
    return {"started_at": at, "finished_at": at, "status": "ok", "error": None}


def digest_job(runtime: Runtime, name: str) -> Outcome:
    """The target of ``digest:<name>``."""
    from syncer.daemon.scheduler import guarded

    return guarded(f"digest:{name}", runtime, lambda: _digest(runtime, name))


def _digest(runtime: Runtime, name: str) -> Outcome:
    from syncer.daemon.scheduler import job_lease
    from syncer.errors import ConfigError
    from syncer.relay.digests import digest_config, run_digest

    try:
        digest = digest_config(runtime.config, name)
    except ConfigError:
        log.info("job.skipped", reason="the digest is no longer configured")
        return "skipped"
    try:
        with job_lease(runtime, f"digest:{name}"):
            run_digest(runtime.store, digest)
    except LeaseHeld as exc:
        log.info("job.skipped", reason=exc.message)
        return "skipped"
    return "ok"


def outbox_specs(config: Config) -> Iterator[JobSpec]:
    """The ``outbox`` job, when there is an SMTP server to send through."""
    from syncer.daemon.scheduler import JobSpec, Schedule

    if config.smtp:
        yield JobSpec("outbox", "outbox", outbox_job, (), Schedule(every=config.outbox.flush_every))


def outbox_job(runtime: Runtime) -> Outcome:
    """The target of ``outbox``: apply the forward rules, then send what is due."""
    from syncer.daemon.scheduler import guarded

    return guarded("outbox", runtime, lambda: _outbox(runtime))


def _outbox(runtime: Runtime) -> Outcome:
    from syncer.relay.forwards import apply_forwards
    from syncer.relay.outbox import LEASE, flush_outbox, outbox_lease
    from syncer.sync.runner import STOPPED, SyncStopped

    config = runtime.config

    try:
        with (
            outbox_lease(runtime.store, config, holder=runtime.holder) as lease,
            runtime.holding(LEASE),
        ):

            def heartbeat() -> None:
                lease()
                if runtime.stop.is_set():
                    raise SyncStopped(STOPPED)

            apply_forwards(runtime.store, config.forwards, heartbeat=heartbeat)
            result = flush_outbox(runtime.store, config, heartbeat=heartbeat)
    except LeaseHeld as exc:
        log.info("job.skipped", reason=exc.message)
        return "skipped"
    except SyncStopped:
        log.info("outbox.stopped", reason=STOPPED)
        return "stopped"
    return "ok" if result.ok else "failed"

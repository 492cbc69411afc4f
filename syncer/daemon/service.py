"""The ``syncer run`` process: the job registry on an APScheduler 3 BlockingScheduler.

Public API: :class:`Daemon` (``run()`` until a signal, ``run_once()``) and
:func:`run_daemon`, which the CLI calls.

Lifecycle of ``syncer run``:

- Start: build every job of :data:`syncer.daemon.kinds.JOB_KINDS` from the
  configuration (a schedule APScheduler cannot read exits 2), start the
  ``[metrics]`` endpoint if configured and the web archive if ``[web] enabled``
  (:mod:`syncer.web.server`), install the signal handlers and run the
  scheduler in the main thread. Jobs run in a thread pool of ``[scheduler]
  threads`` with ``coalesce=True, max_instances=1`` and the configured
  ``misfire_grace_time``. Interval jobs are first due one interval after their
  last recorded run (at once when overdue), cron jobs at their next time.
- SIGTERM / SIGINT: the scheduler takes no new job; each running sync is asked
  to stop after the batch in flight (the stop flag checked in the pipeline's
  heartbeat, which runs after every committed batch); the jobs end, releasing
  their leases, and the process exits 0. If they are not done within
  ``grace_period`` (or on a second signal) the leases still held are released
  and the process exits 0 anyway: an uncommitted batch is rolled back by the
  database and simply fetched again by the next run.
- SIGHUP: the configuration file is read again. A bad one is logged
  (``config.reload_failed``, one line) and the old jobs keep running; a good one
  replaces the jobs whose schedule changed, adds new ones and removes the ones
  gone. ``[archive]``, ``[metrics]``, ``[logging]`` and ``threads`` take effect
  at the next start (``config.restart_needed``).

Push mode (:mod:`syncer.daemon.push`): started with the scheduler for every IMAP
account that wants it, reconfigured on SIGHUP, halted first on SIGTERM (its
connections log out within the grace period); it thins out the scheduled polls
of accounts whose NOTIFY connection is up. ``--once`` never pushes.

``syncer run --once`` runs every job once -- the syncs first, in parallel up to
``threads``, then the other kinds -- and exits 0, or 1 if any failed; a job
whose account another worker holds is skipped, which is not a failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import UTC, datetime
from itertools import groupby
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from syncer.config.schema import load_config
from syncer.daemon.health import Pinger
from syncer.daemon.jobs import JobObserver, JobSpec, LastRun, Observers, Outcome, Runtime
from syncer.daemon.kinds import JOB_KINDS
from syncer.daemon.scheduler import build_jobs, first_run
from syncer.errors import ConfigError, SyncerError

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
    from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.daemon.push import PushSupervisor
    from syncer.model import RunSummary
    from syncer.web.server import WebThread

log = structlog.get_logger(__name__)

#: Longest wait for the leases to be released once the grace period is over.
_RELEASE_TIMEOUT = 5.0
_POLL = 0.2


class Daemon:
    """One ``syncer run`` process over one archive store (closed by :meth:`run`)."""

    def __init__(
        self,
        config: Config,
        store: ArchiveStore,
        *,
        worker: str | None = None,
        metrics_file: str | None = None,
    ) -> None:
        from tzlocal import get_localzone

        from syncer.archive.leases import holder_id

        observers: list[JobObserver] = []
        self._metrics = None
        self._metrics_file = metrics_file
        if config.metrics.address is not None or metrics_file is not None:
            from syncer.daemon.metrics import Metrics

            self._metrics = Metrics(store, config)
            self._metrics.watch([a.name for a in config.accounts])
            observers.append(self._metrics)
        self._pinger: Pinger | None = None
        self._ping_each: _PingEachSync | None = None
        if config.monitoring.ping_url is not None:
            self._pinger = Pinger(config.monitoring.ping_url)
            self._ping_each = _PingEachSync(self._pinger)
            observers.append(self._ping_each)
        self.runtime = Runtime(
            config=config, store=store, holder=holder_id(worker), observer=Observers(*observers)
        )
        self._timezone = get_localzone()
        self._scheduler: BlockingScheduler | None = None
        self._applied: dict[str, tuple[JobSpec, float]] = {}
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stop_asked_at: float | None = None
        self._force = threading.Event()
        self._reload_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._push: PushSupervisor | None = None
        self._web: WebThread | None = None
        self._old_handlers: dict[int, Any] = {}

    # ------------------------------------------------------------------ the daemon

    def run(self) -> int:
        """Schedule the jobs and run them until SIGTERM/SIGINT; returns the exit status (0).

        :raises ConfigError: when a schedule cannot be read.
        """
        from apscheduler.events import EVENT_SCHEDULER_STARTED  # type: ignore[import-untyped]
        from apscheduler.executors.pool import (  # type: ignore[import-untyped]
            ThreadPoolExecutor as PoolExecutor,
        )
        from apscheduler.schedulers.blocking import BlockingScheduler

        config = self.runtime.config
        jobs = build_jobs(config, self._timezone)
        self._scheduler = BlockingScheduler(
            executors={"default": PoolExecutor(config.scheduler.threads)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=self._timezone,
        )
        self._scheduler.add_listener(lambda _event: self._started.set(), EVENT_SCHEDULER_STARTED)
        self._apply(jobs)
        self._install_signals(reload=True)
        try:
            self._start_metrics()
            self._start_web()
            log.info(
                "daemon.started",
                worker=self.runtime.holder,
                jobs=sorted(self._applied),
                metrics=config.metrics.listen,
            )
            if not jobs:
                log.warning("daemon.no_jobs", hint="Add [[accounts]] to the configuration.")
            self._start_push()
            if not self.runtime.stop.is_set():
                self._scheduler.start()  # blocks until _begin_stop shuts it down
            return self._finish()
        finally:
            self._restore_signals()

    def run_once(self) -> int:
        """Run every job once (syncs first) and return 0, or 1 if any failed."""
        config = self.runtime.config
        specs = [spec for spec, _trigger in build_jobs(config, self._timezone)]
        if self._ping_each is not None:
            self._ping_each.once = True  # one ping for the whole run, below
        self._install_signals(reload=False)
        outcomes: dict[str, Outcome] = {}
        pool = ThreadPoolExecutor(config.scheduler.threads, thread_name_prefix="job")
        try:
            for _order, group in groupby(specs, key=lambda s: JOB_KINDS[s.kind].once_order):
                futures = {
                    spec.id: pool.submit(spec.target, self.runtime, *spec.args) for spec in group
                }
                self._wait_for(list(futures.values()))
                outcomes.update((job_id, f.result()) for job_id, f in futures.items())
                if self.runtime.stop.is_set():
                    break
        finally:
            pool.shutdown(wait=True)
            self._restore_signals()
        failed = sorted(job for job, outcome in outcomes.items() if outcome == "failed")
        log.info(
            "daemon.once_completed",
            ok=sum(1 for o in outcomes.values() if o == "ok"),
            skipped=sorted(job for job, o in outcomes.items() if o == "skipped"),
            stopped=sorted(job for job, o in outcomes.items() if o == "stopped"),
            failed=failed,
        )
        if self._pinger is not None:
            self._pinger.ping(not failed)
        if self._metrics is not None and self._metrics_file is not None:
            self._metrics.write_textfile(self._metrics_file)
        return 1 if failed else 0

    def reload(self) -> bool:
        """Read the configuration file again and replace the jobs; False (and the old
        jobs kept) when the new file is not valid."""
        with self._reload_lock:
            old = self.runtime.config
            try:
                new = load_config(old.path)
                jobs = build_jobs(new, self._timezone)
            except ConfigError as exc:
                log.error("config.reload_failed", path=str(old.path), error=exc.message)
                return False
            later = [
                key
                for key in ("archive", "metrics", "logging", "web")
                if getattr(old, key) != getattr(new, key)
            ]
            if old.scheduler.threads != new.scheduler.threads:
                later.append("scheduler.threads")
            if later:
                log.warning("config.restart_needed", changed=later)
            self.runtime.config = new
            if self._metrics is not None:
                self._metrics.watch([a.name for a in new.accounts])
                self._metrics.config = new
            self._apply(jobs)
            if self._push is not None:
                self._push.apply(new)
            log.info("config.reloaded", path=str(new.path), jobs=sorted(self._applied))
            return True

    # ------------------------------------------------------------------ jobs

    def _apply(self, jobs: list[tuple[JobSpec, BaseTrigger]]) -> None:
        """Make the scheduler's jobs those of ``jobs``; an unchanged job keeps its next run."""
        from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
        from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

        assert self._scheduler is not None
        misfire = self.runtime.config.scheduler.misfire_grace_time
        wanted = {spec.id: (spec, trigger) for spec, trigger in jobs}
        for job_id in set(self._applied) - set(wanted):
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)
            log.info("job.removed", job=job_id)
        now = datetime.now(UTC)
        for job_id, (spec, trigger) in wanted.items():
            if self._applied.get(job_id) == (spec, misfire):
                continue
            extra: dict[str, Any] = {}
            if spec.schedule.every is not None:
                first = first_run(spec.schedule.every, self._last_run(spec), now)
                trigger = IntervalTrigger(
                    seconds=spec.schedule.every, start_date=first, timezone=self._timezone
                )
                extra["next_run_time"] = first
            self._scheduler.add_job(
                spec.target,
                trigger,
                args=(self.runtime, *spec.args),
                id=job_id,
                name=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, int(misfire)),
                **extra,
            )
        self._applied = {job_id: (spec, misfire) for job_id, (spec, _t) in wanted.items()}

    def _last_run(self, spec: JobSpec) -> LastRun | None:
        try:
            return JOB_KINDS[spec.kind].last_run(self.runtime.store, spec)
        except SyncerError as exc:  # the archive is unreachable now: run the job when due
            log.warning("job.last_run_unknown", job=spec.id, error=exc.message)
            return None

    # ------------------------------------------------------------------ signals

    def _install_signals(self, *, reload: bool) -> None:
        handlers: dict[int, Any] = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop}
        if reload:
            handlers[signal.SIGHUP] = self._on_reload
        for signum, handler in handlers.items():
            self._old_handlers[signum] = signal.signal(signum, handler)

    def _restore_signals(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        # Signal handlers run on the main thread between bytecodes, possibly inside the
        # scheduler's own locks: they only set flags and hand the work to a thread.
        if self.runtime.stop.is_set():
            self._force.set()
            return
        self._stop_asked_at = time.monotonic()
        self.runtime.stop.set()
        name = signal.Signals(signum).name
        threading.Thread(target=self._begin_stop, args=(name,), daemon=True).start()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=self.reload, name="reload", daemon=True).start()

    def _begin_stop(self, signame: str) -> None:
        log.info(
            "daemon.stopping",
            signal=signame,
            running=self.runtime.running_jobs(),
            grace_s=self.runtime.config.scheduler.grace_period,
        )
        from apscheduler.schedulers import SchedulerNotRunningError  # type: ignore[import-untyped]

        if self._scheduler is None:
            return
        # A signal during start-up: wait for the scheduler to be running, then stop it.
        while not self._started.wait(_POLL):
            if self._finished.is_set():  # stopped before the scheduler ever started
                return
        with contextlib.suppress(SchedulerNotRunningError):
            self._scheduler.shutdown(wait=False)

    # ------------------------------------------------------------------ stopping

    def _wait_for(self, futures: list[Future[Outcome]]) -> None:
        """Wait for ``futures``; after a stop request, at most until the grace period ends."""
        while True:
            _done, pending = wait_futures(futures, timeout=_POLL)
            if not pending:
                return
            if self.runtime.stop.is_set() and self._grace_over():
                self._abandon()

    def _start_push(self) -> None:
        from syncer.daemon.push import PushSupervisor

        self._push = PushSupervisor(self.runtime)
        self.runtime.should_poll = self._push.should_poll
        self._push.apply(self.runtime.config)

    def _finish(self) -> int:
        if self._push is not None:
            self._push.stop(self.runtime.config.scheduler.grace_period)
        while not self.runtime.wait_idle(_POLL):
            if self._grace_over():
                self._abandon()
        self._finished.set()
        self._stop_metrics()
        self._stop_web()
        log.info("daemon.stopped", worker=self.runtime.holder)
        return 0

    def _grace_over(self) -> bool:
        grace = self.runtime.config.scheduler.grace_period
        asked = self._stop_asked_at if self._stop_asked_at is not None else time.monotonic()
        return self._force.is_set() or time.monotonic() - asked >= grace

    def _abandon(self) -> None:
        """The grace period is over: release our leases and exit 0 now.

        The batches in flight are not committed; the database rolls them back when
        this process's connections close, and the next run fetches them again.
        """
        log.warning(
            "daemon.grace_expired",
            running=self.runtime.running_jobs(),
            forced=self._force.is_set(),
            hint="Uncommitted batches are fetched again by the next run.",
        )
        releaser = threading.Thread(target=self._release_leases, daemon=True)
        releaser.start()
        releaser.join(_RELEASE_TIMEOUT)
        self._stop_metrics()
        self._stop_web()
        log.info("daemon.stopped", worker=self.runtime.holder)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # The job threads are still inside their batch; the interpreter would wait for
        # them at exit (concurrent.futures joins its workers), so leave at once.
        os._exit(0)

    def _release_leases(self) -> None:
        for name in self.runtime.held_leases():
            try:
                self.runtime.store.release_lease(name, self.runtime.holder)
                log.info("lease.released", lease=name)
            except SyncerError as exc:
                log.warning("lease.release_failed", lease=name, error=exc.message)

    # ------------------------------------------------------------------ metrics

    def _start_metrics(self) -> None:
        address = self.runtime.config.metrics.address
        if address is None or self._metrics is None:
            return
        from syncer.daemon.metrics import serve

        try:
            self._server = serve(address, self._metrics, self._healthy)
        except OSError as exc:
            raise ConfigError(
                f"{self.runtime.config.path}: metrics.listen: cannot listen on "
                f"{self.runtime.config.metrics.listen} ({exc.strerror or exc})."
            ) from None
        log.info("metrics.listening", address=self.runtime.config.metrics.listen)

    def _start_web(self) -> None:
        """``[web] enabled``: serve the web archive from this process too."""
        config = self.runtime.config
        if not config.web.enabled:
            return
        from syncer.web.server import WebThread

        self._web = WebThread(config, self.runtime.store)
        self._web.start()

    def _stop_web(self) -> None:
        web, self._web = self._web, None
        if web is not None:
            web.stop()

    def _healthy(self) -> tuple[bool, str]:
        """(healthy, the reason): stopping, a push connection down for longer than its
        poll interval, or an account whose last successful sync is older than
        ``[monitoring] stale_after`` (:mod:`syncer.daemon.health`)."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self.runtime.stop.is_set():
            return False, "stopping"
        from syncer.daemon.health import account_health

        problems = self._push.problems() if self._push is not None else []
        try:
            healths = account_health(self.runtime.config, self.runtime.store)
        except SyncerError as exc:
            problems.append(f"archive unreadable: {exc.message}")
        else:
            stale = [h.reason for h in healths if h.state == "critical"]
            if stale:
                problems.append("stale: " + "; ".join(stale))
        return (False, "; ".join(problems)) if problems else (True, "ok")

    def _stop_metrics(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _PingEachSync(JobObserver):
    """The daemon pings after each sync job (``--once`` pings once, at the end)."""

    def __init__(self, pinger: Pinger) -> None:
        self.pinger = pinger
        self.once = False

    def sync_finished(self, summary: RunSummary, outcome: Outcome) -> None:
        if not self.once and outcome in ("ok", "failed"):
            self.pinger.ping(outcome == "ok")


def run_daemon(
    config: Config,
    store: ArchiveStore,
    *,
    once: bool,
    worker: str | None,
    metrics_file: str | None = None,
) -> int:
    """``syncer run [--once]``: the exit status. The store is closed on return.

    :param metrics_file: after ``--once``, write the metrics there (node_exporter textfile).
    """
    from syncer.archive.leases import holder_id
    from syncer.retention.policy import record_policies

    # A changed [[retention]] (a shortened keep period above all) is audited at start-up.
    try:
        record_policies(store, config.retention, actor=holder_id(worker))
    except BaseException:
        store.close()
        raise
    daemon = Daemon(config, store, worker=worker, metrics_file=metrics_file)
    try:
        return daemon.run_once() if once else daemon.run()
    finally:
        store.close()

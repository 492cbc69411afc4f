"""Runs syncs and checks for configured accounts: the composition root for mail sources.

It connects an account's protocol adapter through :mod:`syncer.connect` (IMAP:
:func:`~syncer.connect.open_source` and :mod:`syncer.sync.folders`; POP3:
:func:`~syncer.connect.open_maildrop` and :mod:`syncer.sync.maildrop`), takes
the account's lease so that no two runs write one account at once, records
the run in ``sync_runs``, binds the log context (``run_id``, ``account``) and
retries transient failures (dropped connections, timeouts) with backoff: both
pipelines are incremental, so a retry resumes where the last committed batch
ended. One account's failure
never stops the others.
"""

from __future__ import annotations

import fnmatch
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog
import tenacity
from structlog.contextvars import bound_contextvars

from syncer.archive.account import AccountArchive
from syncer.archive.leases import Lease, account_lease, hold_lease
from syncer.connect import open_maildrop, open_source
from syncer.errors import SourceError, SourceThrottled, Stopped, SyncerError
from syncer.model import FolderSummary, RunSummary
from syncer.sync.folders import Progress, SyncOptions, sync_folders
from syncer.sync.maildrop import FOLDER as POP3_FOLDER
from syncer.sync.maildrop import POP3Options, maildrop_keys, sync_maildrop

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import AccountConfig, Config
    from syncer.sources.base import FolderSource, MailDropSource


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)
R = TypeVar("R")

log = structlog.get_logger(__name__)


def pop3_options(account: AccountConfig) -> POP3Options:
    return POP3Options(
        delete_after_archive=account.delete_after_archive and not account.leave_on_server,
        delete_after_days=None if account.leave_on_server else account.delete_after_days,
        batch_messages=account.batch_messages,
        batch_bytes=account.batch_bytes,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sync_options(
    account: AccountConfig, folder_globs: Sequence[str] = (), *, max_bytes: int | None = None
) -> SyncOptions:
    return SyncOptions(
        max_bytes=max_bytes,
        include=tuple(account.folders.include),
        exclude=tuple(account.folders.exclude),
        exclude_special_use=tuple(account.folders.exclude_special_use),
        only=tuple(folder_globs),
        full_scan_days=account.full_scan_days,
        batch_messages=account.batch_messages,
        batch_bytes=account.batch_bytes,
    )


def job_lease(
    store: ArchiveStore, config: Config, name: str, *, holder: str | None = None
) -> AbstractContextManager[Lease]:
    """Hold the lease ``name`` for the block with the configured TTL and background
    renewal (``[scheduler] lease_ttl``): :func:`syncer.archive.leases.hold_lease`, not
    waiting for another live holder.

    :raises LeaseHeld: when another live worker holds it.
    """
    settings = config.scheduler
    return hold_lease(
        store,
        name,
        wait=False,
        ttl=settings.lease_ttl,
        holder=holder,
        renew_every=settings.heartbeat_seconds,
    )


# Allowed (PLR0913): sync_account's hooks (connectors, lease, stop) for the daemon and the tests.
def sync_account(  # noqa: PLR0913
    account: AccountConfig,
    store: ArchiveStore,
    *,
    folder_globs: Sequence[str] = (),
    wait: bool = False,
    progress: Progress | None = None,
    connect: Callable[[AccountConfig], FolderSource] = open_source,
    connect_pop3: Callable[[AccountConfig], MailDropSource] = open_maildrop,
    lease: Lease | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> RunSummary:
    """One recorded, leased, retried sync of one account. Never raises ``SyncerError``.

    POP3 accounts have one folder, ``INBOX``; ``folder_globs`` that do not
    match it skip the account's sync (reported as a skipped folder).

    :param lease: the account's lease, when the caller already holds it (the
        scheduler, which skips an account another worker holds); taken here otherwise.
    :param stop: once set, the run stops after the batch in flight is committed
        (checked in the heartbeat) and is recorded as failed with a "stopped" error.

    Provider limits: a run that met ``[THROTTLED]``, ``[OVERQUOTA]`` or the like
    (``SourceThrottled``), or spent the account's ``max_bytes_per_day``, records
    when the next may start (``resume_at``); until then a run does nothing but
    say so. Either way the next run resumes after the last committed batch.
    """
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    with bound_contextvars(run_id=run_id, account=account.name):
        ensured, waiting = _ensure_and_wait(account, store, clock())
        if waiting is not None:
            log.info("run.waiting", resume_at=waiting[0].isoformat(), reason=waiting[1])
            return RunSummary(
                account=account.name,
                run_id=run_id,
                ok=True,
                warnings=(f"{waiting[1]}; resumes at {waiting[0]:%Y-%m-%d %H:%M} UTC",),
            )
        log.info("run.started")
        started_run = False
        counted = _Counted(progress)
        warnings: tuple[str, ...] = ()
        try:
            if not ensured:  # a write transaction: a no-change run pays for one only
                store.ensure_account(account.name, account.protocol)
            held = nullcontext(lease) if lease else account_lease(store, account.name, wait=wait)
            with held as current:
                heartbeat = current.heartbeat(stop)
                # Runs start only under the lease, so any run still 'running' now is one
                # whose worker died (SIGKILL, power loss) before it could record its end.
                store.abandon_runs(account.name, f"abandoned: {_ABANDONED}")
                store.start_run(account.name, run_id, worker=current.holder)
                started_run = True
                budget, frees_at = _budget(account, store, clock())
                archive = AccountArchive(store, account.name)
                pipeline = _Pipeline(account, archive, counted, heartbeat, budget)
                folders, error, warnings = pipeline.run(folder_globs, connect, connect_pop3)
                resume_at = None
                if any(f.stopped == "budget" for f in folders):
                    resume_at = (frees_at or clock()) + timedelta(days=1)
                    warnings += (_budget_spent(account, resume_at),)
                _record_end(store, run_id, folders, error, resume_at)
        except SourceThrottled as exc:
            resume_at = clock() + timedelta(seconds=exc.retry_after)
            folders, error = [], _throttled(exc, resume_at)
            if started_run:
                _record_failure(store, run_id, error, resume_at=resume_at, bytes=counted.bytes)
        except (SyncerError, Stopped) as exc:
            folders, error = [], str(exc)
            if started_run:
                _record_failure(store, run_id, error)
        except BaseException as exc:
            # A bug or an interrupt: the run must not stay 'running' after the process
            # is gone (status would show it for ever); the caller reports the exception.
            if started_run:
                _record_failure(store, run_id, f"unexpected error: {type(exc).__name__}: {exc}")
            raise
        return _completed(account.name, run_id, folders, error, warnings, started)


def _completed(
    account: str,
    run_id: str,
    folders: Sequence[FolderSummary],
    error: str | None,
    warnings: tuple[str, ...],
    started: float,
) -> RunSummary:
    """The run's summary, logged as ``run.completed`` or ``run.failed``."""
    seconds = round(time.monotonic() - started, 3)
    summary = RunSummary(
        account=account,
        run_id=run_id,
        ok=error is None,
        folders=tuple(folders),
        error=error,
        seconds=seconds,
        warnings=warnings,
    )
    event: Callable[..., Any] = log.info if summary.ok else log.error
    event(
        "run.completed" if summary.ok else "run.failed",
        new=summary.new,
        bytes=summary.bytes,
        folders=len(folders),
        skipped=sum(1 for f in folders if f.skipped),
        error=error,
        duration_ms=int(seconds * 1000),
    )
    return summary


def _budget_spent(account: AccountConfig, resume_at: datetime) -> str:
    """The run's warning (and log event) when the daily download budget stopped it."""
    log.warning("run.budget_spent", resume_at=resume_at.isoformat())
    return (
        f"the daily download budget ({account.max_bytes_per_day:,} bytes) is "
        f"spent; the next run resumes at {resume_at:%Y-%m-%d %H:%M} UTC"
    )


def _throttled(exc: SourceThrottled, resume_at: datetime) -> str:
    """The run's error when the provider throttled it, logged once with what it means.

    Not retried in seconds like a dropped line: the next run resumes after the
    last committed batch.
    """
    log.warning(
        "run.throttled",
        limit=exc.limit,
        folder=exc.folder,
        wait_minutes=round(exc.retry_after / 60, 1),
        resume_at=resume_at.isoformat(),
        meaning=exc.hint,
    )
    return (
        f"{exc.message} {exc.hint or ''} The next run resumes at "
        f"{resume_at:%Y-%m-%d %H:%M} UTC, after the last committed batch."
    ).replace("  ", " ")


def _record_end(
    store: ArchiveStore,
    run_id: str,
    folders: Sequence[FolderSummary],
    error: str | None,
    resume_at: datetime | None,
) -> None:
    store.finish_run(
        run_id,
        ok=error is None,
        error=error,
        new=sum(f.new for f in folders),
        flags_changed=sum(f.flags_changed for f in folders),
        expunged=sum(f.expunged for f in folders),
        bytes=sum(f.bytes for f in folders),
        resume_at=resume_at,
    )


_ABANDONED = "its worker stopped before recording the end (killed?); the next run resumed"


def _ensure_and_wait(
    account: AccountConfig, store: ArchiveStore, now: datetime
) -> tuple[bool, tuple[datetime, str] | None]:
    """Record the account (once per run: a write transaction) and read whether an earlier
    run's limit still holds: (recorded, :func:`_waiting`'s answer).

    A failure here is not the run's end: the run meets it again and records it.
    """
    try:
        store.ensure_account(account.name, account.protocol)
    except SyncerError:
        return False, None
    try:
        return True, _waiting(account, store, now)
    except SyncerError:
        return True, None


def _waiting(
    account: AccountConfig, store: ArchiveStore, now: datetime
) -> tuple[datetime, str] | None:
    """``(resume_at, why)`` while an earlier run's provider limit or the daily budget
    still holds, else None."""
    resume_at = store.resume_at(account.name)
    if resume_at is not None and resume_at > now:
        return resume_at, "waiting for a provider limit or the daily download budget"
    remaining, frees_at = _budget(account, store, now)
    if remaining is not None and remaining <= 0:
        return (frees_at or now) + timedelta(days=1), "the daily download budget is spent"
    return None


def _budget(
    account: AccountConfig, store: ArchiveStore, now: datetime
) -> tuple[int | None, datetime | None]:
    """Bytes this run may download under ``max_bytes_per_day`` (None: no budget), and when
    the earliest download counted against it started."""
    if account.max_bytes_per_day is None:
        return None, None
    used, earliest = store.bytes_since(account.name, now - timedelta(days=1))
    return account.max_bytes_per_day - used, earliest


def _record_failure(
    store: ArchiveStore,
    run_id: str,
    error: str,
    *,
    resume_at: datetime | None = None,
    bytes: int = 0,
) -> None:
    try:
        store.finish_run(
            run_id,
            ok=False,
            error=error,
            new=0,
            flags_changed=0,
            expunged=0,
            bytes=bytes,
            resume_at=resume_at,
        )
    except SyncerError as exc:  # the archive itself failed; the run stays 'running'
        log.error("run.record_failed", error=str(exc))


#: What a pipeline run gives the run record: the folders, the error (None: success), warnings.
_Outcome = tuple[list[FolderSummary], str | None, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """The two pipelines' one entry: connect, run, and again after transient failures.

    Both pipelines are incremental, so a retry resumes after the last committed batch;
    the source is closed after each attempt.
    """

    account: AccountConfig
    archive: AccountArchive
    progress: Progress | None
    heartbeat: Callable[[], None]
    budget: int | None = None

    def run(
        self,
        folder_globs: Sequence[str],
        connect: Callable[[AccountConfig], FolderSource],
        connect_pop3: Callable[[AccountConfig], MailDropSource],
    ) -> _Outcome:
        """The account's pipeline by its protocol; a folder's error is the run's error."""
        if self.account.protocol == "pop3":
            folders, error, warnings = self.maildrop(folder_globs, connect_pop3)
        else:
            folders, error, warnings = self.folders(folder_globs, connect)
        folder_errors = [f"{f.folder}: {f.error}" for f in folders if f.error]
        if error is None and folder_errors:
            error = "; ".join(folder_errors)
        return folders, error, warnings

    def folders(
        self, folder_globs: Sequence[str], connect: Callable[[AccountConfig], FolderSource]
    ) -> _Outcome:
        options = sync_options(self.account, folder_globs, max_bytes=self.budget)

        def work(source: FolderSource) -> _Outcome:
            summaries = sync_folders(
                source,
                self.archive,
                options,
                progress=self.progress,
                heartbeat=self.heartbeat,
            )
            return summaries, None, ()

        return self._retrying(connect, work, with_folder=True)

    def maildrop(
        self, folder_globs: Sequence[str], connect: Callable[[AccountConfig], MailDropSource]
    ) -> _Outcome:
        if folder_globs and not any(fnmatch.fnmatchcase(POP3_FOLDER, g) for g in folder_globs):
            return [FolderSummary(folder=POP3_FOLDER, skipped=True)], None, ()
        options = pop3_options(self.account)

        def work(source: MailDropSource) -> _Outcome:
            result = sync_maildrop(
                source,
                self.archive,
                options,
                progress=self.progress,
                heartbeat=self.heartbeat,
            )
            return [result.summary], None, result.warnings

        return self._retrying(connect, work, with_folder=False)

    def _retrying(
        self,
        connect: Callable[[AccountConfig], S],
        work: Callable[[S], _Outcome],
        *,
        with_folder: bool,
    ) -> _Outcome:
        """``work`` on a fresh connection, retried on transient ``SourceError``s with
        exponential backoff (1, 2, 4 ... s, at most 30 s) up to ``retries`` more times;
        the last failure becomes the run's error."""
        retrying = tenacity.Retrying(
            # A provider limit is waited out in minutes, by the next run (sync_account).
            retry=tenacity.retry_if_exception(
                lambda exc: (
                    getattr(exc, "transient", False) and not isinstance(exc, SourceThrottled)
                )
            ),
            stop=tenacity.stop_after_attempt(self.account.retries + 1),
            wait=tenacity.wait_exponential(multiplier=1, max=30),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, connect, work)
        except SourceThrottled:
            raise
        except SourceError as exc:
            if exc.transient and self.account.provider is not None:
                # Gmail drops connections past its bandwidth limit rather than answering:
                # after the quick retries, wait like for any other provider limit.
                raise SourceThrottled(
                    exc.message,
                    limit="dropped",
                    retry_after=_DROP_WAIT,
                    account=exc.account,
                    folder=exc.folder,
                    hint=(
                        f"That means the connection kept failing; {self.account.provider} drops "
                        "connections past its limits, so syncer waits "
                        f"{round(_DROP_WAIT / 60)} min."
                    ),
                ) from exc
            if not with_folder:
                return [], str(exc), ()  # with the hint: what to change (auth, ca_file, ...)
            where = f"folder {exc.folder!r}: " if exc.folder else ""
            return [], where + exc.message, ()

    def _attempt(
        self, connect: Callable[[AccountConfig], S], work: Callable[[S], _Outcome]
    ) -> _Outcome:
        source = connect(self.account)
        try:
            return work(source)
        finally:
            source.close()


#: How long a provider account waits after its connection kept dropping (seconds).
_DROP_WAIT = 10 * 60.0


class _Counted:
    """Passes progress on and counts the bytes of committed batches, so a run that ends
    at a provider limit still records what it downloaded (the daily budget counts it)."""

    def __init__(self, inner: Progress | None) -> None:
        self.inner = inner
        self.bytes = 0

    def planned(self, messages: int, size: int | None) -> None:
        if self.inner is not None:
            self.inner.planned(messages, size)

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        if self.inner is not None:
            self.inner.folder_started(folder, messages, size)

    def advanced(self, messages: int, size: int) -> None:
        self.bytes += size
        if self.inner is not None:
            self.inner.advanced(messages, size)


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0
    log.warning(
        "run.retrying",
        attempt=state.attempt_number,
        delay_s=delay,
        error=getattr(exc, "message", str(exc)),
    )


def sync_accounts(
    store: ArchiveStore,
    accounts: Sequence[AccountConfig],
    *,
    folder_globs: Sequence[str] = (),
    wait: bool = False,
    progress: Progress | None = None,
) -> list[RunSummary]:
    """Sync each account in turn; a failing account does not stop the others.

    :param progress: what reports each folder's progress (the CLI's display), if any.
    """
    return [
        sync_account(account, store, folder_globs=folder_globs, wait=wait, progress=progress)
        for account in accounts
    ]


def check_accounts(
    config: Config,
    store: ArchiveStore,
    accounts: Sequence[AccountConfig],
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Compare each folder's UID set on the server with the archive's live entries.

    A POP3 account has one folder, ``INBOX``: the server's UIDLs are compared
    with the archive's ``pop3_seen`` rows not recorded as deleted from the
    server, and ``missing_uids``/``stale_uids`` list UIDLs (or fingerprint
    keys, for servers without UIDL). Its ``complete`` depends on ``missing``
    only: a message deleted from the server by another client (``stale``) is
    still in the archive, so nothing is lost.

    :param progress: told of each folder compared (counted in folders, not messages).
    :returns: one report per account: ``complete`` and, per folder, the UIDs
        missing from the archive and those the archive holds but the server
        no longer has (``stale``), at most 50 of each listed.
    """
    reports: list[dict[str, Any]] = []
    for account in accounts:
        report: dict[str, Any] = {"account": account.name, "folders": [], "error": None}
        if account.protocol == "pop3":
            reports.append(_check_pop3(account, store, report))
            continue
        try:
            source = open_source(account)
        except SyncerError as exc:
            report.update(error=str(exc), complete=False)
            reports.append(report)
            continue
        try:
            options = sync_options(account)
            listed = [
                s
                for s in source.list_folders(with_status=False)
                if s.selectable and options.in_scope(s.display_name)
            ]
            if progress is not None:
                progress.planned(len(listed), None)
            for status in listed:
                if progress is not None:
                    progress.folder_started(f"{account.name}: {status.display_name}", 1, 0)
                sel = source.select(status.name)
                server = set(source.uids())
                archived = store.live_uids(account.name, status.name, sel.uidvalidity)
                missing = sorted(server - archived)
                stale = sorted(archived - server)
                report["folders"].append(
                    {
                        "folder": status.display_name,
                        "uidvalidity": sel.uidvalidity,
                        "server": len(server),
                        "archive": len(archived),
                        "missing": len(missing),
                        "stale": len(stale),
                        "missing_uids": missing[:50],
                        "stale_uids": stale[:50],
                    }
                )
                if progress is not None:
                    progress.advanced(1, 0)
        except SyncerError as exc:
            report["error"] = str(exc)
        finally:
            source.close()
        report["complete"] = report["error"] is None and all(
            f["missing"] == 0 and f["stale"] == 0 for f in report["folders"]
        )
        reports.append(report)
    return reports


def _check_pop3(
    account: AccountConfig, store: ArchiveStore, report: dict[str, Any]
) -> dict[str, Any]:
    """``check_accounts`` for one POP3 account (reads LIST/UIDL, or TOP without UIDL)."""
    try:
        source = open_maildrop(account)
    except SyncerError as exc:
        report.update(error=str(exc), complete=False)
        return report
    try:
        keys, _warnings = maildrop_keys(source, source.listing())
        server = set(keys.values())
        archived = {
            uidl for uidl, row in store.pop3_seen(account.name).items() if row.deleted_at is None
        }
        missing = sorted(server - archived)
        stale = sorted(archived - server)
        report["folders"].append(
            {
                "folder": POP3_FOLDER,
                "uidvalidity": None,
                "server": len(server),
                "archive": len(archived),
                "missing": len(missing),
                "stale": len(stale),
                "missing_uids": missing[:50],
                "stale_uids": stale[:50],
            }
        )
    except SyncerError as exc:
        report["error"] = str(exc)
    finally:
        source.close()
    report["complete"] = report["error"] is None and all(
        f["missing"] == 0 for f in report["folders"]
    )
    return report

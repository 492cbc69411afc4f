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
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog
from structlog.contextvars import bound_contextvars

from syncer.connect import open_maildrop, open_source
from syncer.errors import LeaseHeld, SourceError, SyncerError
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

LEASE_TTL_SECONDS = 300.0
_WAIT_POLL_SECONDS = 2.0


def holder_id(worker: str | None = None) -> str:
    """Who we are in a lease: worker name (default: the host name) and pid.

    Readable in the 'held by' message. A holder whose worker name is this host's
    name is judged dead as soon as its pid is gone (:func:`_holder_is_dead`); one
    with another name only when its lease expires.
    """
    return f"{worker or socket.gethostname()}:{os.getpid()}"


class SyncStopped(Exception):
    """Raised from a run's heartbeat, right after a committed batch, once a stop is asked.

    Deliberately not a ``SyncerError``: no per-folder handler catches it on the way
    up; :func:`sync_account` records the run as stopped, and the next run resumes
    after the last committed batch.
    """


def _holder_is_dead(holder: str | None) -> bool:
    """True for a lease holder on this host whose process no longer exists.

    Holders on other hosts are never judged dead here: their leases expire.
    A reused pid reads as alive, which only means waiting for the expiry.
    """
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def pop3_options(account: AccountConfig) -> POP3Options:
    return POP3Options(
        delete_after_archive=account.delete_after_archive and not account.leave_on_server,
        delete_after_days=None if account.leave_on_server else account.delete_after_days,
        batch_messages=account.batch_messages,
        batch_bytes=account.batch_bytes,
    )


def sync_options(account: AccountConfig, folder_globs: Sequence[str] = ()) -> SyncOptions:
    return SyncOptions(
        include=tuple(account.folders.include),
        exclude=tuple(account.folders.exclude),
        only=tuple(folder_globs),
        full_scan_days=account.full_scan_days,
        batch_messages=account.batch_messages,
        batch_bytes=account.batch_bytes,
    )


class Lease:
    """A lease while it is held (an account's, or a job's such as ``normalize``);
    calling it is the per-batch heartbeat.

    A thread renews the lease every ``renew_every`` seconds, so that a batch slower
    than the TTL (a throttled download, a slow server) does not lose it; a call
    renews too when a fifth of the TTL has passed. When a renewal finds the lease
    gone (it expired and another worker took it), the next call raises
    :class:`LeaseHeld` and the run fails rather than write next to the new holder.
    """

    def __init__(
        self, store: ArchiveStore, name: str, holder: str, ttl: float, renew_every: float
    ) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl
        self._store = store
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._lost: LeaseHeld | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, args=(renew_every,), name=f"renew {name}", daemon=True
        )
        self._thread.start()

    def __call__(self) -> None:
        if self._lost is not None:
            raise self._lost
        if time.monotonic() - self._last > self.ttl / 5:
            self._renew()

    def _renew(self) -> None:
        with self._lock:
            self._store.renew_lease(self.name, self.holder, self.ttl)
            self._last = time.monotonic()

    def _renew_loop(self, every: float) -> None:
        while not self._done.wait(every):
            try:
                self._renew()
            except LeaseHeld as exc:
                log.error("lease.lost", lease=self.name, error=exc.message)
                self._lost = exc
                return
            except SyncerError as exc:  # the database hiccuped; the next renewal may work
                log.warning("lease.renew_failed", lease=self.name, error=exc.message)

    def stop_renewing(self) -> None:
        self._done.set()
        self._thread.join()


def account_lease(
    store: ArchiveStore,
    account: str,
    *,
    wait: bool,
    ttl: float = LEASE_TTL_SECONDS,
    holder: str | None = None,
    renew_every: float | None = None,
) -> AbstractContextManager[Lease]:
    """Hold the account's lease (``account:<name>``) for the block: :func:`hold_lease`."""
    return hold_lease(
        store, f"account:{account}", wait=wait, ttl=ttl, holder=holder, renew_every=renew_every
    )


@contextmanager
def hold_lease(
    store: ArchiveStore,
    name: str,
    *,
    wait: bool,
    ttl: float = LEASE_TTL_SECONDS,
    holder: str | None = None,
    renew_every: float | None = None,
) -> Iterator[Lease]:
    """Hold the lease ``name`` for the block; yields the :class:`Lease` (the heartbeat).

    The one way every job (a sync, normalize, retention, a digest, the outbox) keeps
    other workers out: renewed in the background, released on exit, and taken over
    at once from a holder on this host whose process is gone.

    :param holder: who we are (default :func:`holder_id`).
    :param renew_every: seconds between background renewals (default ``ttl / 5``).
    :raises LeaseHeld: when another live holder has it and ``wait`` is false.
    """
    holder = holder or holder_id()
    while True:
        try:
            store.acquire_lease(name, holder, ttl)
            break
        except LeaseHeld:
            stale = store.lease_holder(name)
            if _holder_is_dead(stale):
                # Killed on this host (SIGKILL, power loss of a container...): it can never
                # finish, so waiting for the expiry would only delay the next run.
                log.warning("lease.taken_over", lease=name, dead_holder=stale)
                store.release_lease(name, stale or "")
                continue
            if not wait:
                raise
            time.sleep(_WAIT_POLL_SECONDS)
    lease = Lease(store, name, holder, ttl, renew_every or ttl / 5)
    try:
        yield lease
    finally:
        lease.stop_renewing()
        store.release_lease(name, holder)


def sync_account(
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
) -> RunSummary:
    """One recorded, leased, retried sync of one account. Never raises ``SyncerError``.

    POP3 accounts have one folder, ``INBOX``; ``folder_globs`` that do not
    match it skip the account's sync (reported as a skipped folder).

    :param lease: the account's lease, when the caller already holds it (the
        scheduler, which skips an account another worker holds); taken here otherwise.
    :param stop: once set, the run stops after the batch in flight is committed
        (checked in the heartbeat) and is recorded as failed with a "stopped" error.
    """
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    with bound_contextvars(run_id=run_id, account=account.name):
        log.info("run.started")
        started_run = False
        warnings: tuple[str, ...] = ()
        try:
            store.ensure_account(account.name, account.protocol)
            held = nullcontext(lease) if lease else account_lease(store, account.name, wait=wait)
            with held as current:
                heartbeat = _stoppable(current, stop)
                # Runs start only under the lease, so any run still 'running' now is one
                # whose worker died (SIGKILL, power loss) before it could record its end.
                store.abandon_runs(account.name, f"abandoned: {_ABANDONED}")
                store.start_run(account.name, run_id, worker=current.holder)
                started_run = True
                if account.protocol == "pop3":
                    folders, error, warnings = _sync_pop3_with_retries(
                        account, store, folder_globs, progress, heartbeat, connect_pop3
                    )
                else:
                    folders, error = _sync_with_retries(
                        account, store, folder_globs, progress, heartbeat, connect
                    )
                folder_errors = [f"{f.folder}: {f.error}" for f in folders if f.error]
                if error is None and folder_errors:
                    error = "; ".join(folder_errors)
                ok = error is None
                store.finish_run(
                    run_id,
                    ok=ok,
                    error=error,
                    new=sum(f.new for f in folders),
                    flags_changed=sum(f.flags_changed for f in folders),
                    expunged=sum(f.expunged for f in folders),
                    bytes=sum(f.bytes for f in folders),
                )
        except (SyncerError, SyncStopped) as exc:
            folders, ok, error = [], False, str(exc)
            if started_run:
                _record_failure(store, run_id, error)
        seconds = round(time.monotonic() - started, 3)
        summary = RunSummary(
            account=account.name,
            run_id=run_id,
            ok=ok,
            folders=tuple(folders),
            error=error,
            seconds=seconds,
            warnings=warnings,
        )
        event: Callable[..., Any] = log.info if ok else log.error
        event(
            "run.completed" if ok else "run.failed",
            new=summary.new,
            bytes=summary.bytes,
            folders=len(folders),
            skipped=sum(1 for f in folders if f.skipped),
            error=error,
            duration_ms=int(seconds * 1000),
        )
        return summary


_ABANDONED = "its worker stopped before recording the end (killed?); the next run resumed"
STOPPED = "stopped on request after the last committed batch; the next run resumes there"


def _stoppable(lease: Lease, stop: threading.Event | None) -> Callable[[], None]:
    """The pipeline's heartbeat: renew the lease, then honour a stop request."""
    if stop is None:
        return lease

    def heartbeat() -> None:
        lease()
        if stop.is_set():
            raise SyncStopped(STOPPED)

    return heartbeat


def _record_failure(store: ArchiveStore, run_id: str, error: str) -> None:
    try:
        store.finish_run(run_id, ok=False, error=error, new=0, flags_changed=0, expunged=0, bytes=0)
    except SyncerError as exc:  # the archive itself failed; the run stays 'running'
        log.error("run.record_failed", error=str(exc))


def _sync_with_retries(
    account: AccountConfig,
    store: ArchiveStore,
    folder_globs: Sequence[str],
    progress: Progress | None,
    heartbeat: Callable[[], None],
    connect: Callable[[AccountConfig], FolderSource],
) -> tuple[list[FolderSummary], str | None]:
    """Run the pipeline, reconnecting after transient failures (backoff 1, 2, 4 ... s)."""
    options = sync_options(account, folder_globs)
    try:
        return _retrying(
            account,
            connect,
            lambda source: sync_folders(
                source, store, account.name, options, progress=progress, heartbeat=heartbeat
            ),
        ), None
    except SourceError as exc:
        where = f"folder {exc.folder!r}: " if exc.folder else ""
        return [], where + exc.message


def _sync_pop3_with_retries(
    account: AccountConfig,
    store: ArchiveStore,
    folder_globs: Sequence[str],
    progress: Progress | None,
    heartbeat: Callable[[], None],
    connect: Callable[[AccountConfig], MailDropSource],
) -> tuple[list[FolderSummary], str | None, tuple[str, ...]]:
    """The POP3 pipeline with the same retries; returns (folders, error, warnings)."""
    if folder_globs and not any(fnmatch.fnmatchcase(POP3_FOLDER, g) for g in folder_globs):
        return [FolderSummary(folder=POP3_FOLDER, skipped=True)], None, ()
    options = pop3_options(account)
    try:
        result = _retrying(
            account,
            connect,
            lambda source: sync_maildrop(
                source, store, account.name, options, progress=progress, heartbeat=heartbeat
            ),
        )
    except SourceError as exc:
        return [], str(exc), ()  # with the hint: what to change (auth, ca_file, ...)
    return [result.summary], None, result.warnings


def _retrying(
    account: AccountConfig, connect: Callable[[AccountConfig], S], work: Callable[[S], R]
) -> R:
    """Connect and run ``work``, again after transient failures, at most ``retries`` more times.

    The source is closed after each attempt.

    :raises SourceError: the last failure, when it is not transient or the retries are used up.
    """
    attempt = 0
    while True:
        try:
            source = connect(account)
        except SourceError as exc:
            if not exc.transient or attempt >= account.retries:
                raise
            attempt = _backoff(attempt, exc)
            continue
        try:
            return work(source)
        except SourceError as exc:
            if not exc.transient or attempt >= account.retries:
                raise
            attempt = _backoff(attempt, exc)
        finally:
            source.close()


def _backoff(attempt: int, exc: SourceError) -> int:
    delay = min(2.0**attempt, 30.0)
    log.warning("run.retrying", attempt=attempt + 1, delay_s=delay, error=exc.message)
    time.sleep(delay)
    return attempt + 1


def sync_accounts(
    config: Config,
    store: ArchiveStore,
    accounts: Sequence[AccountConfig],
    *,
    folder_globs: Sequence[str] = (),
    wait: bool = False,
    progress: bool = False,
) -> list[RunSummary]:
    """Sync each account in turn; a failing account does not stop the others."""
    bar: AbstractContextManager[Any]
    if progress:
        from syncer.cli.render import SyncProgress

        bar = SyncProgress()
    else:
        bar = nullcontext(None)
    with bar as display:
        return [
            sync_account(account, store, folder_globs=folder_globs, wait=wait, progress=display)
            for account in accounts
        ]


def check_accounts(
    config: Config, store: ArchiveStore, accounts: Sequence[AccountConfig]
) -> list[dict[str, Any]]:
    """Compare each folder's UID set on the server with the archive's live entries.

    A POP3 account has one folder, ``INBOX``: the server's UIDLs are compared
    with the archive's ``pop3_seen`` rows not recorded as deleted from the
    server, and ``missing_uids``/``stale_uids`` list UIDLs (or fingerprint
    keys, for servers without UIDL). Its ``complete`` depends on ``missing``
    only: a message deleted from the server by another client (``stale``) is
    still in the archive, so nothing is lost.

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
            for status in source.list_folders(with_status=False):
                if not status.selectable or not options.in_scope(status.display_name):
                    continue
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

"""Runs syncs and checks for configured accounts: the composition root for mail sources.

It builds a protocol adapter from an account's configuration, takes the
account's lease so that no two runs write one account at once, records the
run in ``sync_runs``, binds the log context (``run_id``, ``account``) and
retries transient failures (dropped connections, timeouts) with backoff: the
pipeline is incremental, so a retry resumes where the last committed batch
ended. One account's failure never stops the others.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import structlog
from structlog.contextvars import bound_contextvars

from syncer.errors import LeaseHeld, SourceError, SyncerError
from syncer.model import FolderSummary, RunSummary
from syncer.pipeline import Progress, SyncOptions, sync_folders

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config import AccountConfig, Config
    from syncer.sources.base import FolderSource

log = structlog.get_logger(__name__)

LEASE_TTL_SECONDS = 300.0
_WAIT_POLL_SECONDS = 2.0


def holder_id() -> str:
    """Who we are in a lease: host and pid, readable in the 'held by' message."""
    return f"{socket.gethostname()}:{os.getpid()}"


def open_source(account: AccountConfig) -> FolderSource:
    """Connect to the account's server (logged in, capabilities read).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    from syncer.credentials import resolve_secret

    if account.protocol != "imap":
        raise SyncerError(
            f"Account {account.name!r}: protocol {account.protocol!r} is not supported by "
            f"syncer {_version()} for `syncer sync`.",
            hint="Use an IMAP account, or upgrade syncer.",
        )
    password = resolve_secret(account, owner=f"account {account.name!r}")
    from syncer.sources.imap import IMAPSource

    return IMAPSource.open(
        host=account.host,
        port=account.effective_port,
        security=account.security,
        username=account.username,
        password=password,
        tls_verify=account.tls_verify,
        ca_file=str(account.ca_file) if account.ca_file else None,
        timeout=account.timeout,
        namespaces=tuple(account.namespaces),
        subscribed_only=account.subscribed_only,
        account=account.name,
        max_bytes_per_second=account.max_bytes_per_second,
    )


def _version() -> str:
    from syncer import __version__

    return __version__


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


def sync_options(account: AccountConfig, folder_globs: Sequence[str] = ()) -> SyncOptions:
    return SyncOptions(
        include=tuple(account.folders.include),
        exclude=tuple(account.folders.exclude),
        only=tuple(folder_globs),
        full_scan_days=account.full_scan_days,
        batch_messages=account.batch_messages,
        batch_bytes=account.batch_bytes,
    )


@contextmanager
def account_lease(
    store: ArchiveStore, account: str, *, wait: bool, ttl: float = LEASE_TTL_SECONDS
) -> Iterator[Callable[[], None]]:
    """Hold the account's lease for the block; yields a heartbeat that renews it."""
    name = f"account:{account}"
    holder = holder_id()
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
    last = time.monotonic()

    def heartbeat() -> None:
        nonlocal last
        if time.monotonic() - last > ttl / 5:
            store.renew_lease(name, holder, ttl)
            last = time.monotonic()

    try:
        yield heartbeat
    finally:
        store.release_lease(name, holder)


def sync_account(
    account: AccountConfig,
    store: ArchiveStore,
    *,
    folder_globs: Sequence[str] = (),
    wait: bool = False,
    progress: Progress | None = None,
    connect: Callable[[AccountConfig], FolderSource] = open_source,
) -> RunSummary:
    """One recorded, leased, retried sync of one account. Never raises ``SyncerError``."""
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    with bound_contextvars(run_id=run_id, account=account.name):
        log.info("run.started")
        started_run = False
        try:
            store.ensure_account(account.name, account.protocol)
            with account_lease(store, account.name, wait=wait) as heartbeat:
                store.start_run(account.name, run_id)
                started_run = True
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
        except SyncerError as exc:
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
    attempt = 0
    while True:
        try:
            source = connect(account)
        except SourceError as exc:
            if not exc.transient or attempt >= account.retries:
                return [], exc.message
            attempt = _backoff(attempt, exc)
            continue
        try:
            return sync_folders(
                source, store, account.name, options, progress=progress, heartbeat=heartbeat
            ), None
        except SourceError as exc:
            if not exc.transient or attempt >= account.retries:
                where = f"folder {exc.folder!r}: " if exc.folder else ""
                return [], where + exc.message
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
        from syncer._render import SyncProgress

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

    :returns: one report per account: ``complete`` and, per folder, the UIDs
        missing from the archive and those the archive holds but the server
        no longer has (``stale``), at most 50 of each listed.
    """
    reports: list[dict[str, Any]] = []
    for account in accounts:
        report: dict[str, Any] = {"account": account.name, "folders": [], "error": None}
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

"""Runs syncs and checks for configured accounts: the composition root for mail sources.

It builds a protocol adapter from an account's configuration (IMAP:
:func:`open_source` and :mod:`syncer.sync.folders`; POP3: :func:`open_maildrop`
and :mod:`syncer.sync.maildrop`), takes the account's lease so that no two
runs write one account at once, records the run in ``sync_runs``, binds the
log context (``run_id``, ``account``) and retries transient failures (dropped
connections, timeouts) with backoff: both pipelines are incremental, so a
retry resumes where the last committed batch ended. One account's failure
never stops the others.
"""

from __future__ import annotations

import fnmatch
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog
from structlog.contextvars import bound_contextvars

from syncer.archive.leases import Lease, account_lease, hold_lease
from syncer.errors import SourceError, Stopped, SyncerError
from syncer.model import FolderSummary, RunSummary
from syncer.sync.folders import Progress, SyncOptions, sync_folders
from syncer.sync.maildrop import FOLDER as POP3_FOLDER
from syncer.sync.maildrop import POP3Options, maildrop_keys, sync_maildrop

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import AccountConfig, Config
    from syncer.oauth.sasl import TokenProvider
    from syncer.sources.base import FolderSource, MailDropSource
    from syncer.sources.imap.watch import IMAPWatcher


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)
R = TypeVar("R")

log = structlog.get_logger(__name__)



def open_source(account: AccountConfig) -> FolderSource:
    """Connect to the account's server (logged in, capabilities read).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    if account.protocol != "imap":
        raise SyncerError(
            f"Account {account.name!r} is a {account.protocol} account, not IMAP; "
            "open it with open_maildrop()."
        )
    password, tokens, mechanism = _sign_in_with(account)
    from syncer.sources.imap.source import IMAPSource

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
        oauth2=tokens,
        sasl_mechanism=mechanism,
    )


def open_watcher(
    account: AccountConfig, *, folder: str = "INBOX", notify: bool = True
) -> IMAPWatcher:
    """A watching connection to the account's IMAP server (push mode): NOTIFY where
    offered and ``notify`` is true, else IDLE on ``folder`` (a display name).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    password, tokens, mechanism = _sign_in_with(account)
    from syncer.sources.imap.watch import IMAPWatcher

    return IMAPWatcher(
        account.host,
        account.effective_port,
        account.security,
        account.username,
        password,
        tls_verify=account.tls_verify,
        ca_file=str(account.ca_file) if account.ca_file else None,
        timeout=account.timeout,
        account=account.name,
        oauth2=tokens,
        sasl_mechanism=mechanism,
        folder=folder,
        notify=notify,
    ).connect()


def open_maildrop(account: AccountConfig) -> MailDropSource:
    """Connect to the account's POP3 server (secured, logged in, CAPA read).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    if account.protocol != "pop3":
        raise SyncerError(
            f"Account {account.name!r} is a {account.protocol} account, not POP3; "
            "open it with open_source()."
        )
    password, tokens, mechanism = _sign_in_with(account)
    from syncer.sources.pop3.source import POP3Source

    return POP3Source.open(
        host=account.host,
        port=account.effective_port,
        security=account.security,
        username=account.username,
        password=password,
        tls_verify=account.tls_verify,
        ca_file=str(account.ca_file) if account.ca_file else None,
        timeout=account.timeout,
        auth=account.auth,
        account=account.name,
        oauth2=tokens,
        sasl_mechanism=mechanism,
    )


def _sign_in_with(account: AccountConfig) -> tuple[str, TokenProvider | None, str]:
    """(password, OAuth2 token provider, SASL mechanism) for the account's adapter.

    :raises ConfigError: when the password cannot be read.
    """
    if account.oauth2 is not None:
        from syncer.config.tokens import token_provider

        tokens = token_provider(
            account.oauth2, kind="account", name=account.name, protocol=account.protocol
        )
        return "", tokens, account.oauth2.mechanism
    from syncer.secrets import resolve_secret

    return resolve_secret(account, owner=f"account {account.name!r}"), None, "auto"


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
                heartbeat = current.heartbeat(stop)
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
        except (SyncerError, Stopped) as exc:
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

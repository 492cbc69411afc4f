"""Push mode of ``syncer run``: archive mail seconds after it arrives, not at the next poll.

Why: a poll every 15 minutes leaves a window in which a message can arrive and be
deleted without ever being archived. Each IMAP account with ``push`` on (the
default wherever the server offers NOTIFY or IDLE) gets:

- a *watcher* thread holding the lease ``push:<account>`` (so among several
  workers one watches the account) and the watching connections of
  :mod:`syncer.sources.imap.watch`: one NOTIFY connection for every folder, or,
  without NOTIFY, one IDLE connection on INBOX and one per ``idle_folders`` entry;
- a *sync* thread that turns the events into incremental syncs through the one
  pipeline (:func:`syncer.sync.runner.sync_account` narrowed to the changed
  folders, under the account's lease ``account:<name>`` like a scheduled run:
  same batches, same crash safety, recorded in ``sync_runs``), then normalizes
  what arrived. Events that come in while a sync runs are merged into the next one.

Robustness: a lost connection (network, ``* BYE`` on a server restart) is
reopened with backoff (1, 2, 4 ... 60 s), and every (re)connection is followed
by one sync of the whole account, so nothing delivered while disconnected is
missed (the watch is armed *before* that sync starts). The scheduled poll stays
as the safety net; while a NOTIFY connection is up it runs only every
``[scheduler] push_poll_factor``-th time (default 4: hourly for the default
15 minutes). In IDLE mode the other folders are only seen by the poll, so it is
not thinned. On SIGTERM the watchers leave IDLE and log out within a second or
two; a push sync in flight stops after its batch, like any job.

Visible: the state of each account (mode, connected, since, error) is a
``job_state`` row (:mod:`syncer.archive.store_push`) that ``syncer status``
reads (:func:`syncer.daemon.push_state.push_status`); the metrics
``syncer_push_connected{account}`` and ``syncer_push_delay_seconds{account}`` come
through the runtime's observer;
:meth:`PushSupervisor.problems` feeds ``/healthz``.

Public API: :class:`PushSupervisor`, :func:`wants_push`.
"""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog
from structlog.contextvars import bound_contextvars

from syncer.connect import open_watcher
from syncer.errors import ConfigError, LeaseHeld, SourceError, SyncerError
from syncer.sync.normalize import normalize_pending
from syncer.sync.runner import job_lease, sync_account, sync_options

if TYPE_CHECKING:
    from syncer.archive.leases import Lease
    from syncer.config.schema import AccountConfig, Config
    from syncer.daemon.jobs import Outcome, Runtime
    from syncer.sources.imap.watch import IMAPWatcher, WatchEvent

log = structlog.get_logger(__name__)

#: Seconds between looks at the stop flag while waiting (a local timer, no traffic).
TICK = 0.5
#: Longest wait between reconnection attempts.
BACKOFF_MAX = 60.0
#: Wait before trying again when the account's lease is held (a scheduled poll runs).
_BUSY_RETRY = 0.5

State = Literal["starting", "connected", "down", "elsewhere", "unsupported", "stopped"]


def wants_push(account: AccountConfig) -> bool:
    """Whether push mode is tried for the account (IMAP, ``push`` not false)."""
    return account.protocol == "imap" and account.push is not False


def _now() -> datetime:
    return datetime.now(UTC)


def _backoff(attempt: int) -> float:
    return float(min(2.0**attempt, BACKOFF_MAX))


class _Pending:
    """Folders waiting for a push-triggered sync; ``everything`` means the whole account."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._everything = False
        self._folders: dict[str, str] = {}  # wire name -> display name

    def add(self, everything: bool = False, folders: Iterable[tuple[str, str]] = ()) -> None:
        with self._cond:
            self._everything |= everything
            self._folders.update(folders)
            if self._everything or self._folders:
                self._cond.notify_all()

    def take(self, timeout: float) -> tuple[bool, dict[str, str]] | None:
        """What is pending (and clear it), waiting up to ``timeout`` s; None: nothing."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._everything or self._folders, timeout):
                return None
            taken = (self._everything, self._folders)
            self._everything, self._folders = False, {}
            return taken


class AccountPush:
    """Push mode for one account: a watcher thread and a sync thread (module docstring)."""

    def __init__(self, runtime: Runtime, name: str) -> None:
        self.runtime, self.name = runtime, name
        self.state: State = "starting"
        self.mode: str | None = None
        self.since = time.monotonic()  # when ``state`` last changed
        self.pending = _Pending()
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, name=f"push-watch {name}", daemon=True),
            threading.Thread(target=self._sync_loop, name=f"push-sync {name}", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def halt(self) -> None:
        self._halt.set()

    def join(self, deadline: float) -> None:
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def down_for(self) -> float:
        """Seconds the push connection has been wanted but not up (0 when not wanted)."""
        if self.state in ("starting", "down"):
            return time.monotonic() - self.since
        return 0.0

    def _stopping(self) -> bool:
        return self._halt.is_set() or self.runtime.stop.is_set()

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking within a tick once a stop is asked."""
        end = time.monotonic() + seconds
        while not self._stopping() and (left := end - time.monotonic()) > 0:
            self._halt.wait(min(TICK, left))

    def _account(self) -> AccountConfig | None:
        try:
            return self.runtime.config.account(self.name)
        except ConfigError:
            return None  # removed by a reload; the supervisor halts us

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        with bound_contextvars(account=self.name, job=f"push:{self.name}"):
            try:
                self._watch_leased()
            except Exception as exc:  # a bug here must not take the daemon down
                log.error("push.crashed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
                self._set("down", error=f"{type(exc).__name__}: {exc}")
            finally:
                if self.state not in ("unsupported", "elsewhere", "down"):
                    self._set("stopped")
                self._halt.set()  # the sync thread ends with the watcher

    def _watch_leased(self) -> None:
        """Hold ``push:<account>`` and watch; another worker holding it watches instead."""
        runtime = self.runtime
        while not self._stopping():
            name = f"push:{self.name}"
            try:
                with (
                    job_lease(runtime.store, runtime.config, name, holder=runtime.holder) as lease,
                    runtime.holding(name),
                ):
                    if self._connect_loop(lease) in ("unsupported", "removed"):
                        return
            except LeaseHeld as exc:
                if self.state != "elsewhere":
                    log.info("push.elsewhere", reason=exc.message)
                    self._set("elsewhere")
                self._wait(runtime.config.scheduler.lease_ttl / 2)
            except SyncerError as exc:  # the archive failed taking the lease
                log.warning("push.lease_failed", error=exc.message)
                self._wait(BACKOFF_MAX)

    def _connect_loop(self, lease: Lease) -> str:
        """Connect, watch, reconnect with backoff; returns why it stopped."""
        attempt = 0
        while not self._stopping():
            lease()  # LeaseHeld when another worker took the lease over
            account = self._account()
            if account is None:
                return "removed"
            try:
                watchers = self._open(account)
            except SyncerError as exc:
                delay = _backoff(attempt)
                attempt += 1
                self._down(exc, delay)
                self._wait(delay)
                continue
            if watchers is None:
                level = log.warning if account.push else log.info
                level("push.unsupported", hint="The server offers neither NOTIFY nor IDLE.")
                self._set("unsupported")
                return "unsupported"
            attempt = 0
            try:
                self._watching(watchers, lease)
            except SourceError as exc:
                self._down(exc, _backoff(0))
                self._wait(_backoff(0))
            finally:
                for watcher in watchers:
                    watcher.close()
        return "stopped"

    def _open(self, account: AccountConfig) -> list[IMAPWatcher] | None:
        """The watching connections (NOTIFY, else IDLE on INBOX and ``idle_folders``);
        None when the server offers neither."""
        first = open_watcher(account, notify=True)
        if first.mode == "none":
            return None
        watchers = [first]
        try:
            if first.mode == "idle":
                for folder in account.idle_folders:
                    watchers.append(open_watcher(account, folder=folder, notify=False))
        except BaseException:
            for watcher in watchers:
                watcher.close()
            raise
        return watchers

    def _watching(self, watchers: list[IMAPWatcher], lease: Lease) -> None:
        from syncer.sources.imap.watch import wait_any

        self.mode = watchers[0].mode
        folders = [w.folder for w in watchers] if self.mode == "idle" else ["*"]
        self._set("connected", folders=folders)
        log.info("push.connected", mode=self.mode, folders=folders)
        # Armed first, then one sync of everything: nothing delivered before or while
        # disconnected is missed, and anything after is announced.
        self.pending.add(everything=True)
        while not self._stopping():
            lease()
            events = wait_any(watchers, TICK)
            if events:
                self._queue(events)

    def _queue(self, events: list[WatchEvent]) -> None:
        account = self._account()
        if account is None:
            return
        options = sync_options(account)
        everything = any(e.folder is None for e in events)
        folders = {
            (e.folder, e.display_name)
            for e in events
            if e.folder is not None
            and e.display_name is not None
            and options.in_scope(e.display_name)
        }
        log.debug("push.events", everything=everything, folders=sorted(d for _, d in folders))
        self.pending.add(everything, folders)

    def _down(self, exc: SyncerError, retry_in: float) -> None:
        log.warning("push.disconnected", error=exc.message, retry_in_s=retry_in)
        self._set("down", error=exc.message)

    def _set(self, state: State, **extra: Any) -> None:
        changed = state != self.state
        if changed:
            self.since = time.monotonic()
        was_connected, self.state = self.state == "connected", state
        if was_connected != (state == "connected"):
            self.runtime.observer.push_connected(self.name, state == "connected")
        record = {
            "state": state,
            "mode": self.mode,
            "since": _now().isoformat(),
            "holder": self.runtime.holder,
            "error": None,
            **extra,
        }
        if state == "elsewhere":
            return  # the row is the other worker's to write
        try:
            self.runtime.store.set_push_state(self.name, record)
        except SyncerError as exc:
            log.warning("push.state_unrecorded", error=exc.message)

    # ------------------------------------------------------------------ syncing

    def _sync_loop(self) -> None:
        with bound_contextvars(account=self.name, job=f"push:{self.name}"):
            failures = 0
            while not self._stopping():
                taken = self.pending.take(TICK)
                if taken is None:
                    continue
                everything, folders = taken
                try:
                    outcome = self._sync(everything, folders)
                except Exception as exc:  # keep the thread alive; try again later
                    log.error("push.sync_crashed", error=f"{type(exc).__name__}: {exc}")
                    outcome = "failed"
                if outcome == "ok":
                    failures = 0
                    continue
                self.pending.add(everything, folders.items())  # not done: again, later
                if outcome == "busy":
                    self._wait(_BUSY_RETRY)
                elif outcome == "failed":
                    self._wait(_backoff(failures))
                    failures += 1

    def _sync(self, everything: bool, folders: dict[str, str]) -> str:
        """One push-triggered sync: ``ok``, ``busy`` (lease held), ``failed`` or ``stopped``."""
        runtime, account = self.runtime, self._account()
        if account is None or runtime.stop.is_set():
            return "stopped"
        globs = () if everything else tuple(glob.escape(d) for d in sorted(folders.values()))
        started = _now()
        lease_name = f"account:{self.name}"
        with runtime.running(f"push:{self.name}"):
            if runtime.stop.is_set():  # counted first, then checked: see jobs.guarded
                return "stopped"
            try:
                with (
                    job_lease(
                        runtime.store, runtime.config, lease_name, holder=runtime.holder
                    ) as lease,
                    runtime.holding(lease_name),
                ):
                    summary = sync_account(
                        account, runtime.store, folder_globs=globs, lease=lease, stop=runtime.stop
                    )
            except LeaseHeld:
                return "busy"
            outcome: Outcome = (
                "ok" if summary.ok else "stopped" if runtime.stop.is_set() else "failed"
            )
            runtime.observer.sync_finished(summary, outcome)
            log.info(
                "push.synced",
                folders=["*"] if everything else sorted(folders.values()),
                new=summary.new,
                ok=summary.ok,
                duration_ms=int(summary.seconds * 1000),
            )
            if summary.new:
                self._after_new(started)
        return outcome

    def _after_new(self, started: datetime) -> None:
        """Normalize what arrived (unless a normalize job runs now) and report its delays."""
        runtime = self.runtime
        try:
            with (
                job_lease(runtime.store, runtime.config, "normalize", holder=runtime.holder),
                runtime.holding("normalize"),
            ):
                normalize_pending(
                    runtime.store, workers=1, verify_dkim=runtime.config.archive.verify_dkim
                )
        except LeaseHeld:
            log.debug("push.normalize_deferred", reason="the normalize job is running")
        except SyncerError as exc:
            log.warning("push.normalize_failed", error=exc.message)
        try:
            runtime.observer.push_delays(
                self.name, runtime.store.arrival_delays(self.name, started)
            )
        except SyncerError as exc:
            log.warning("push.delays_unread", error=exc.message)


class PushSupervisor:
    """Push mode of one ``syncer run`` process: an :class:`AccountPush` per account
    that wants it (:func:`wants_push`), started, reconfigured and stopped with the daemon.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._accounts: dict[str, AccountPush] = {}
        self._polls_skipped: dict[str, int] = {}
        self._lock = threading.Lock()

    def apply(self, config: Config) -> None:
        """Start push for accounts that want it now, halt it for those that no longer do.

        An account whose settings changed keeps its threads; the new settings apply
        at its next (re)connection.
        """
        wanted = {a.name for a in config.accounts if wants_push(a)}
        with self._lock:
            for name in set(self._accounts) - wanted:
                self._accounts.pop(name).halt()
                log.info("push.removed", account=name)
            for name in sorted(wanted - set(self._accounts)):
                self.runtime.observer.push_connected(name, False)
                push = AccountPush(self.runtime, name)
                self._accounts[name] = push
                push.start()

    def stop(self, timeout: float) -> None:
        """Halt every account's push and wait up to ``timeout`` s for the threads."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pushes = list(self._accounts.values())
        for push in pushes:
            push.halt()
        for push in pushes:
            push.join(deadline)

    def should_poll(self, account: str) -> bool:
        """The scheduled poll's gate: thinned to every ``push_poll_factor``-th run while
        the account's NOTIFY connection is up; always in IDLE mode or when down."""
        push = self._accounts.get(account)
        if push is None or not push.connected or push.mode != "notify":
            return True
        factor = self.runtime.config.scheduler.push_poll_factor
        with self._lock:
            skipped = self._polls_skipped.get(account, 0) + 1
            if skipped >= factor:
                self._polls_skipped[account] = 0
                return True
            self._polls_skipped[account] = skipped
            return False

    def problems(self) -> list[str]:
        """Accounts whose push connection has been down longer than their poll interval."""
        config = self.runtime.config
        found = []
        for name, push in sorted(self._accounts.items()):
            try:
                account = config.account(name)
            except ConfigError:
                continue
            interval = account.every or config.scheduler.default_every
            down = push.down_for()
            if down > interval:
                found.append(f"push for account {name!r} down for {down:.0f} s")
        return found

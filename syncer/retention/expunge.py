"""Server expunge for retention: remove archived messages from IMAP and POP3 servers.

Why this module exists: it joins the protocol adapters with the archive (so it
lives at the top level, like the pipelines), and it is where "never lose mail"
is enforced for retention: a copy on a server is removed only when the
archive's copy exists and verifies *now* -- its blob is re-read, its SHA-256
recomputed and its size compared -- and only through commands that remove
exactly that message:

* IMAP: ``\\Deleted`` + ``UID EXPUNGE`` of the chosen UIDs, under the folder's
  recorded UIDVALIDITY (:meth:`IMAPSource.expunge`); a server without UIDPLUS is
  refused, never sent a blanket EXPUNGE. Entries removed are marked gone with
  :meth:`ArchiveStore.mark_gone`.
* POP3: the maildrop is listed, each due message is checked once more against
  its archive copy and marked with DELE, and QUIT removes them -- the same
  steps as ``delete_after_days`` in :mod:`syncer.sync.maildrop`, whose helpers
  are reused; only after QUIT succeeded are they recorded as deleted.

Each account is worked on under its lease (no sync of it runs meanwhile), and
every expunge appends a ``retention.expunged`` audit event listing what was
removed. Problems (an account no longer configured, a copy that does not
verify, a server without UIDPLUS) are reported and the rest goes on.

Public API: :class:`Expunger` (the protocol :func:`syncer.retention.policy.apply_plan`
calls), :class:`ServerExpunger`, :class:`ExpungeOutcome`, :func:`verified_copies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Protocol

import structlog

from syncer.errors import ArchiveError, ConfigError, LeaseHeld, SourceError
from syncer.sync.folders import utcnow

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_retention import ServerCopy
    from syncer.config.schema import AccountConfig, Config
    from syncer.sources.base import FolderSource, MailDropSource

log = structlog.get_logger(__name__)


@dataclass
class ExpungeOutcome:
    """How many server copies were removed, and why others were not."""

    expunged: int = 0
    problems: list[str] = field(default_factory=list)


class Expunger(Protocol):
    def expunge(
        self,
        store: ArchiveStore,
        copies: Sequence[ServerCopy],
        *,
        owner: dict[int, str],
        actor: str | None,
        run_id: str,
    ) -> ExpungeOutcome:
        """Remove ``copies`` from their servers; ``owner`` maps message id -> policy."""
        ...


def verified_copies(
    store: ArchiveStore, copies: Sequence[ServerCopy]
) -> tuple[list[ServerCopy], list[str]]:
    """The copies whose archive blob re-reads and hashes right, and why the others fail."""
    good: list[ServerCopy] = []
    problems: list[str] = []
    verdict: dict[str, str | None] = {}
    for copy in copies:
        if copy.sha256 not in verdict:
            try:
                raw = store.get_raw(copy.sha256)
            except ArchiveError as exc:
                verdict[copy.sha256] = f"its archive copy does not verify ({exc.message})"
            else:
                verdict[copy.sha256] = (
                    None
                    if len(raw) == copy.size
                    else f"its archive copy has {len(raw)} bytes, {copy.size} were recorded"
                )
        problem = verdict[copy.sha256]
        if problem is None:
            good.append(copy)
        else:
            where = f"UID {copy.uid}" if copy.uidl is None else f"UIDL {copy.uidl}"
            problems.append(
                f"Account {copy.account!r}: message {copy.message_pk} ({where} in "
                f"{copy.folder!r}) stays on the server: {problem}."
            )
            log.error("retention.expunge_refused", account=copy.account, message=copy.message_pk)
    return good, problems


class ServerExpunger:
    """Connects to each account's server (from the configuration) and expunges there.

    :param open_source: builds a connected IMAP source for an account (default
        :func:`syncer.connect.open_source`); :param open_maildrop: the same for POP3.
    """

    def __init__(
        self,
        config: Config | None,
        *,
        open_source: Callable[[AccountConfig], FolderSource] | None = None,
        open_maildrop: Callable[[AccountConfig], MailDropSource] | None = None,
        holder: str | None = None,
    ) -> None:
        from syncer import connect

        self._config = config
        self._open_source = open_source or connect.open_source
        self._open_maildrop = open_maildrop or connect.open_maildrop
        self._holder = holder

    def expunge(
        self,
        store: ArchiveStore,
        copies: Sequence[ServerCopy],
        *,
        owner: dict[int, str],
        actor: str | None,
        run_id: str,
    ) -> ExpungeOutcome:
        from syncer.archive.leases import account_lease

        outcome = ExpungeOutcome()
        ordered = sorted(copies, key=lambda c: c.account)
        for account_name, group in groupby(ordered, key=lambda c: c.account):
            mine = list(group)
            try:
                if self._config is None:
                    raise ConfigError("no configuration was given")
                account = self._config.account(account_name)
            except ConfigError:
                outcome.problems.append(
                    f"Account {account_name!r} is not configured: {len(mine)} copies on its "
                    "server were left alone."
                )
                continue
            good, problems = verified_copies(store, mine)
            outcome.problems.extend(problems)
            if not good:
                continue
            try:
                with account_lease(store, account.name, wait=False, holder=self._holder):
                    if account.protocol == "pop3":
                        done = self._pop3(store, account, good, owner, actor, run_id, outcome)
                    else:
                        done = self._imap(store, account, good, owner, actor, run_id, outcome)
                    outcome.expunged += done
            except LeaseHeld as exc:
                outcome.problems.append(
                    f"Account {account.name!r}: not expunged, a sync holds it ({exc.message})."
                )
            except (SourceError, ConfigError) as exc:
                # ConfigError: its password could not be read. The other accounts go on.
                outcome.problems.append(exc.message)
                log.error("retention.expunge_failed", account=account.name, error=exc.message)
        return outcome

    def _imap(
        self,
        store: ArchiveStore,
        account: AccountConfig,
        copies: list[ServerCopy],
        owner: dict[int, str],
        actor: str | None,
        run_id: str,
        outcome: ExpungeOutcome,
    ) -> int:
        source = self._open_source(account)
        done = 0

        def key(copy: ServerCopy) -> tuple[str, int]:
            return (copy.folder, copy.uidvalidity)

        try:
            for (folder, uidvalidity), group in groupby(sorted(copies, key=key), key=key):
                chosen = list(group)
                try:
                    gone = source.expunge(folder, uidvalidity, [c.uid for c in chosen])
                except SourceError as exc:
                    outcome.problems.append(exc.message)
                    log.error("retention.expunge_failed", folder=folder, error=exc.message)
                    continue
                store.mark_gone(account.name, folder, uidvalidity, gone, None)
                removed = [c for c in chosen if c.uid in set(gone)]
                _audit(store, account.name, folder, removed, owner, actor, run_id)
                done += len(removed)
        finally:
            source.close()
        return done

    def _pop3(
        self,
        store: ArchiveStore,
        account: AccountConfig,
        copies: list[ServerCopy],
        owner: dict[int, str],
        actor: str | None,
        run_id: str,
        outcome: ExpungeOutcome,
    ) -> int:
        from syncer.sync.maildrop import maildrop_keys, verify_copy

        due = {c.uidl: c for c in copies if c.uidl is not None}
        source = self._open_maildrop(account)
        marked: list[ServerCopy] = []
        try:
            listing = source.listing()
            keys, _warnings = maildrop_keys(source, listing)
            for entry in listing:
                copy = due.get(keys[entry.number])
                if copy is None:
                    continue
                # The same last check as delete_after_days: LIST size and the archive copy.
                problem = verify_copy(
                    store, account.name, entry, keys[entry.number], copy.sha256, copy.size
                )
                if problem is not None:
                    outcome.problems.append(problem)
                    continue
                source.delete(entry.number)
                marked.append(copy)
            if marked:
                source.quit()
        finally:
            source.close()
        if not marked:
            return 0
        store.mark_pop3_deleted(account.name, [c.uidl or "" for c in marked], utcnow())
        _audit(store, account.name, "INBOX", marked, owner, actor, run_id)
        return len(marked)


def _audit(
    store: ArchiveStore,
    account: str,
    folder: str,
    removed: list[ServerCopy],
    owner: dict[int, str],
    actor: str | None,
    run_id: str,
) -> None:
    if not removed:
        return
    store.audit(
        "retention.expunged",
        actor=actor,
        subject=account,
        details={
            "run_id": run_id,
            "account": account,
            "folder": folder,
            "uidvalidity": removed[0].uidvalidity,
            "uids": [c.uid for c in removed if c.uidl is None],
            "uidls": [c.uidl for c in removed if c.uidl is not None],
            "sha256": sorted({c.sha256 for c in removed}),
            "policies": sorted({owner.get(c.message_pk, "") for c in removed}),
        },
    )
    log.info("retention.expunged", account=account, folder=folder, messages=len(removed))

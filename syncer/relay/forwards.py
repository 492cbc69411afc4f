"""Forward rules: each newly archived message matching a rule's query is queued for sending.

Why this module exists: it joins the archive (which messages are new and
match, their raw bytes) with the pure composers (:mod:`syncer.relay.compose`)
and the outbox. For each rule:

* A rule seen for the first time starts at the newest message in the archive:
  it applies to messages archived from then on, never to the back catalogue,
  unless asked (``backfill``: every matching message in the archive).
* Each run covers the messages after the rule's cursor (``job_state`` kind
  ``forward``) up to the *horizon* -- the newest message, or just before the
  first one still awaiting normalization, since queries read normalized fields
  (``from:``, ``subject:``, text). Forwarding therefore follows normalization:
  ``syncer sync`` normalizes before it returns, the daemon every
  ``normalize_every``; the ``outbox`` job applies the rules every
  ``[outbox] flush_every`` and then sends.
* Every message a forward sends carries ``X-Syncer-Forwarded: <rule>``; a
  message with that header (from any rule) is never forwarded, so a forward
  that comes back into the archive -- the destination is archived too, or two
  rules point at each other -- does not loop.
* Each message goes to each rule at most once: the idempotency key is
  ``forward:<rule>:<sha256 of the original>``, and the queueing of a batch
  moves the rule's cursor in the same transaction.

Public API: :func:`apply_forwards`, :class:`ForwardRun`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from syncer.errors import ConfigError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_relay import QueuedMessage
    from syncer.config.relay import ForwardConfig
    from syncer.config.schema import Config

log = structlog.get_logger(__name__)

#: Messages read (raw) at a time.
_BATCH = 50


@dataclass
class ForwardRun:
    """What one rule did in one run (``ids``: the messages it queued, or would queue)."""

    name: str
    after: int | None
    until: int
    started: bool = False  # first sight of the rule: cursor set, nothing sent
    ids: list[int] = field(default_factory=list)
    queued: int = 0
    looped: list[int] = field(default_factory=list)  # skipped: a forward of ours


def select_rules(config: Config, names: Sequence[str] = ()) -> list[ForwardConfig]:
    """The rules called ``names`` (all when empty); the error lists the configured ones."""
    if not names:
        return list(config.forwards)
    known = {rule.name: rule for rule in config.forwards}
    missing = [name for name in names if name not in known]
    if missing:
        listed = ", ".join(known) or "none"
        raise ConfigError(
            f"No forward named {missing[0]!r} in {config.path}. "
            f"These are the configured forwards: {listed}."
        )
    return [known[name] for name in names]


def apply_forwards(
    store: ArchiveStore,
    rules: Sequence[ForwardConfig],
    *,
    backfill: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> list[ForwardRun]:
    """Queue what each rule forwards (see the module docstring).

    :param backfill: cover every message in the archive, not only those after the cursor.
    :param dry_run: find what would be forwarded; queue nothing, move no cursor.
    :param heartbeat: called between batches (lease renewal; may raise to stop).
    """
    now = now or datetime.now(UTC)
    return [
        _apply_rule(store, rule, backfill=backfill, dry_run=dry_run, now=now, heartbeat=heartbeat)
        for rule in rules
    ]


def _apply_rule(
    store: ArchiveStore,
    rule: ForwardConfig,
    *,
    backfill: bool,
    dry_run: bool,
    now: datetime,
    heartbeat: Callable[[], None] | None,
) -> ForwardRun:
    from syncer.archive.store_normalize import Pending
    from syncer.relay.compose import forwarded_by_syncer

    state = store.job_cursor("forward", rule.name)
    bound = log.bind(forward=rule.name)
    if state is None and not backfill:
        newest = store.highest_message_pk()
        if not dry_run:
            store.set_job_cursor("forward", rule.name, newest)
        bound.info("forward.started", cursor=newest)
        return ForwardRun(rule.name, None, newest, started=True)
    after = None if backfill or state is None else state.cursor_pk
    until = max(store.relay_horizon(after), after or 0)
    run = ForwardRun(rule.name, after, until)
    for batch in store.select_message_ids(rule.query, after_pk=after, batch_size=_BATCH, now=now):
        if heartbeat is not None:
            heartbeat()
        inside = [pk for pk in batch if pk <= until]
        if inside:
            candidates = store.forward_candidates(inside)
            raws = store.load_raw([Pending(pk, sha, 0) for pk, sha, _subject in candidates])
            items: list[QueuedMessage] = []
            for (pk, sha, subject), raw in zip(candidates, raws, strict=True):
                if forwarded_by_syncer(raw):
                    run.looped.append(pk)
                    continue
                run.ids.append(pk)
                items.append(_outgoing(rule, pk, sha, subject, raw, now))
            if not dry_run:
                run.queued += store.queue_outgoing(
                    items, kind="forward", name=rule.name, cursor_pk=inside[-1]
                )
        if len(inside) < len(batch):
            break
    if not dry_run:
        store.set_job_cursor("forward", rule.name, until)
    if run.looped:
        bound.info("forward.loop_skipped", ids=run.looped)
    bound.info("forward.applied", after=after, until=until, queued=run.queued)
    return run


def _outgoing(
    rule: ForwardConfig, pk: int, sha256: str, subject: str | None, raw: bytes, now: datetime
) -> QueuedMessage:
    from syncer.archive.store_relay import QueuedMessage
    from syncer.config.relay import address_of
    from syncer.relay.compose import attach, redirect

    if rule.mode == "redirect":
        composed = redirect(raw, resent_from=rule.from_, resent_to=rule.to, rule=rule.name, now=now)
    else:
        composed = attach(
            raw,
            sender=rule.from_,
            to=rule.to,
            subject=f"Fwd: {' '.join((subject or '(no subject)').split())}",
            note=f"Forwarded by syncer (rule {rule.name!r}): archived message {pk}.\n"
            "The original is attached, unchanged.",
            rule=rule.name,
            now=now,
        )
    return QueuedMessage(
        idem_key=f"forward:{rule.name}:{sha256}",
        kind="forward",
        smtp=rule.smtp,
        envelope_from=rule.sender,
        recipients=tuple(address_of(to) for to in rule.to),
        body=composed.data,
        message_id=composed.message_id,
    )

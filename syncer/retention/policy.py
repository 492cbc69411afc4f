"""Retention: which messages the policies delete from the archive or expunge from
servers, and doing exactly that.

Why this module exists: the decision is the part people must be able to trust
and predict, so it is one pure function (:func:`decide`) over plain values;
:func:`build_plan` feeds it from the archive and :func:`apply_plan` carries out
a plan, in batches, audited. ``syncer retention plan`` prints the plan;
``syncer retention apply`` builds the same plan and applies it.

The rules, per message (policies select messages with the search language):

1. Its age counts from INTERNALDATE, else the Date header, else when it was
   first archived (:meth:`ArchiveStore.message_facts`).
2. Among the matching policies that delete, the longest ``delete_after_days``
   wins (the policy named in the plan is the first such one in the file).
3. A floor always beats a delete: it is not deleted while younger than the
   largest ``keep_min_days`` of the matching policies.
4. A legal hold beats everything: a message matching an active hold's query is
   neither deleted nor expunged from a server, whatever a policy says. Holds are
   evaluated when the plan is built, so they cover messages archived after the
   hold was placed; :func:`apply_plan` looks again before every batch.
   While any hold is active, a message a hold cannot see -- awaiting
   normalization, or normalized with a failure or partially -- is kept as well
   (:mod:`syncer.sync.holds`); the plan counts these by reason.
5. Server expunge: the longest ``expunge_server_after_days`` of the matching
   policies wins; floors do not apply (the archive keeps its copy), and only
   copies whose archive blob re-reads and verifies are expunged
   (:mod:`syncer.retention.expunge`).

Safety: a run that would delete more than ``max_delete_share`` of the archive's
messages stops with :class:`RetentionRefused` (exit 2) unless forced.

Public API: :func:`decide`, :func:`build_plan`, :func:`apply_plan`,
:class:`RetentionPlan`, :class:`PolicyPlan`, :class:`ApplyResult`,
:func:`record_policies`, :data:`Selector`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from syncer.config.retention import RetentionPolicy
from syncer.errors import UsageError
from syncer.sync.folders import utcnow
from syncer.sync.holds import Selector, held_ids, protection

if TYPE_CHECKING:
    from syncer.archive.search.store import StoreSearch
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_retention import MessageFacts, ServerCopy
    from syncer.config.schema import Config
    from syncer.retention.expunge import Expunger

log = structlog.get_logger(__name__)

#: How many messages a plan shows per policy.
SAMPLE_SIZE = 5


class RetentionRefused(UsageError):
    """A retention run would delete more than the configured share: exit 2, asks for --force."""


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one message.

    :ivar delete_by: the policy that deletes it from the archive now, or None.
    :ivar expunge_by: the policy that removes it from the servers now, or None.
    :ivar held: an active hold stopped a delete or expunge that was due.
    :ivar floored: a floor (``keep_min_days``) stopped a delete that was due.
    :ivar unseen: why a hold cannot see it, when that stopped a delete or expunge.
    """

    pk: int
    delete_by: str | None = None
    expunge_by: str | None = None
    held: bool = False
    floored: bool = False
    unseen: str | None = None


def _older_than(aged_from: datetime, now: datetime, days: int) -> bool:
    return now - aged_from >= timedelta(days=days)


def decide(
    policies: Sequence[RetentionPolicy],
    matches: dict[str, set[int]],
    held: set[int],
    facts: dict[int, MessageFacts],
    now: datetime,
    unseen: dict[int, str] | None = None,
) -> dict[int, Decision]:
    """Apply the rules of the module docstring to every message some policy matches.

    :param matches: policy name -> ids of the messages its query matches.
    :param held: ids matched by an active legal hold.
    :param unseen: ids a hold cannot see (while one is active), with the reason;
        they are kept like held ones.
    :param facts: per id, at least ``aged_from``.
    :returns: a decision per id that is deleted, expunged, held or floored.
    """
    candidates = set().union(*matches.values()) if matches else set()
    unseen = unseen or {}
    decisions: dict[int, Decision] = {}
    for pk in sorted(candidates):
        fact = facts.get(pk)
        if fact is None:  # deleted meanwhile
            continue
        decision = _decide_one(policies, matches, pk, pk in held, fact, now)
        if decision is None:
            continue
        if not decision.held and pk in unseen and (decision.delete_by or decision.expunge_by):
            decision = Decision(pk, floored=decision.floored, unseen=unseen[pk])
        decisions[pk] = decision
    return decisions


def _decide_one(
    policies: Sequence[RetentionPolicy],
    matches: dict[str, set[int]],
    pk: int,
    held: bool,
    fact: MessageFacts,
    now: datetime,
) -> Decision | None:
    """One message's decision under the rules, or None when nothing is due for it."""
    matching = [p for p in policies if pk in matches.get(p.name, ())]
    floor = max((p.keep_min_days or 0 for p in matching), default=0)
    delete_by = expunge_by = None
    is_held = floored = False
    deleters = [p for p in matching if p.delete_after_days is not None]
    if deleters:
        winner = max(deleters, key=lambda p: p.delete_after_days or 0)
        if _older_than(fact.aged_from, now, winner.delete_after_days or 0):
            if not _older_than(fact.aged_from, now, floor):
                floored = True
            elif held:
                is_held = True
            else:
                delete_by = winner.name
    expungers = [p for p in matching if p.expunge_server_after_days is not None]
    if expungers:
        winner = max(expungers, key=lambda p: p.expunge_server_after_days or 0)
        if _older_than(fact.aged_from, now, winner.expunge_server_after_days or 0):
            if held:
                is_held = True
            else:
                expunge_by = winner.name
    if delete_by or expunge_by or is_held or floored:
        return Decision(pk, delete_by, expunge_by, is_held, floored)
    return None


# --------------------------------------------------------------------------- plans


@dataclass
class PolicyPlan:
    """What one policy does in a run: archive deletions and server expunges."""

    name: str
    delete: list[int] = field(default_factory=list)
    delete_bytes: int = 0
    expunge: list[ServerCopy] = field(default_factory=list)
    expunge_bytes: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def expunge_messages(self) -> int:
        return len({copy.message_pk for copy in self.expunge})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "delete": {"messages": len(self.delete), "bytes": self.delete_bytes},
            "expunge": {
                "messages": self.expunge_messages,
                "copies": len(self.expunge),
                "bytes": self.expunge_bytes,
            },
            "sample": self.sample,
        }


@dataclass
class RetentionPlan:
    """A retention run, computed: per policy what goes, and what holds and floors keep."""

    now: datetime
    archive_messages: int
    policies: list[PolicyPlan]
    held: int = 0
    floored: int = 0
    holds: tuple[str, ...] = ()
    unseen: dict[str, int] = field(default_factory=dict)

    @property
    def delete_messages(self) -> int:
        return sum(len(p.delete) for p in self.policies)

    @property
    def delete_bytes(self) -> int:
        return sum(p.delete_bytes for p in self.policies)

    @property
    def share(self) -> float:
        """The share of the archive's messages this run deletes."""
        return self.delete_messages / self.archive_messages if self.archive_messages else 0.0

    def deleted_ids(self) -> set[int]:
        return {pk for p in self.policies for pk in p.delete}

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "archive_messages": self.archive_messages,
            "delete": {
                "messages": self.delete_messages,
                "bytes": self.delete_bytes,
                "share": round(self.share, 6),
            },
            "expunge": {
                "messages": sum(p.expunge_messages for p in self.policies),
                "copies": sum(len(p.expunge) for p in self.policies),
                "bytes": sum(p.expunge_bytes for p in self.policies),
            },
            "kept_by_holds": self.held,
            "kept_by_floors": self.floored,
            "kept_unseen_by_holds": dict(sorted(self.unseen.items())),
            "holds": list(self.holds),
            "policies": [p.to_dict() for p in self.policies],
        }


def store_selector(store: ArchiveStore, now: datetime) -> Selector:
    """Select with the archive's search (``ArchiveStore.select_message_ids``).

    :raises QuerySyntaxError: (exit 2) for a malformed query.
    """

    searcher: StoreSearch = store  # the query-language selection of the search mixin

    def select(query: str) -> Iterable[int]:
        return [pk for batch in searcher.select_message_ids(query, now=now) for pk in batch]

    return select


def build_plan(
    store: ArchiveStore,
    policies: Sequence[RetentionPolicy],
    *,
    now: datetime | None = None,
    select: Selector | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> RetentionPlan:
    """Compute what a retention run at ``now`` deletes and expunges; changes nothing.

    :param select: how queries select messages (default: the archive's search).
    """
    now = now or utcnow()
    select = select or store_selector(store, now)
    matches = {p.name: set(select(p.match)) for p in policies}
    holds = store.holds()
    held = held_ids(holds, select)
    candidates = set().union(*matches.values()) if matches else set()
    facts = store.message_facts(sorted(candidates))
    unseen = store.hold_blind(sorted(candidates)) if holds else {}
    decisions = decide(policies, matches, held, facts, now, unseen)
    plans = {p.name: PolicyPlan(p.name) for p in policies}
    expunge_owner: dict[int, str] = {}
    for decision in decisions.values():
        if decision.delete_by is not None:
            plan = plans[decision.delete_by]
            plan.delete.append(decision.pk)
            plan.delete_bytes += facts[decision.pk].size
        if decision.expunge_by is not None:
            expunge_owner[decision.pk] = decision.expunge_by
    for copy in store.server_copies(sorted(expunge_owner)):
        plan = plans[expunge_owner[copy.message_pk]]
        plan.expunge.append(copy)
        plan.expunge_bytes += copy.size
    for plan in plans.values():
        shown = sorted(set(plan.delete) | {c.message_pk for c in plan.expunge})[:sample_size]
        plan.sample = [
            {
                "id": pk,
                "sha256": facts[pk].sha256,
                "subject": facts[pk].subject,
                "aged_from": facts[pk].aged_from.isoformat(),
                "size": facts[pk].size,
                "delete": pk in plan.delete,
                "expunge": any(c.message_pk == pk for c in plan.expunge),
            }
            for pk in shown
        ]
    return RetentionPlan(
        now=now,
        archive_messages=store.message_count(),
        policies=[plans[p.name] for p in policies],
        held=sum(1 for d in decisions.values() if d.held),
        floored=sum(1 for d in decisions.values() if d.floored),
        holds=tuple(h.name for h in holds),
        unseen=dict(Counter(d.unseen for d in decisions.values() if d.unseen is not None)),
    )


# --------------------------------------------------------------------------- applying


@dataclass
class ApplyResult:
    """What :func:`apply_plan` did."""

    run_id: str
    deleted: int = 0
    deleted_bytes: int = 0
    blobs_removed: int = 0
    files_removed: int = 0
    expunged: int = 0
    skipped_by_new_holds: int = 0
    problems: list[str] = field(default_factory=list)
    deleted_sha256: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "deleted": {
                "messages": self.deleted,
                "bytes": self.deleted_bytes,
                "blobs_removed": self.blobs_removed,
                "files_removed": self.files_removed,
            },
            "expunged": self.expunged,
            "skipped_by_new_holds": self.skipped_by_new_holds,
            "problems": self.problems,
        }


def check_share(plan: RetentionPlan, max_share: float, *, force: bool) -> None:
    """:raises RetentionRefused: when the plan deletes more than ``max_share`` unforced."""
    if force or plan.share <= max_share:
        return
    raise RetentionRefused(
        f"This retention run would delete {plan.delete_messages} of {plan.archive_messages} "
        f"messages ({plan.share:.1%}), more than [retention_settings] max_delete_share "
        f"({max_share:.1%}); nothing was deleted.",
        hint="Check `syncer retention plan`, then run `syncer retention apply --force`.",
    )


# Allowed (PLR0913): collaborators passed explicitly; one branch per audited change.
def apply_plan(  # noqa: PLR0913
    store: ArchiveStore,
    plan: RetentionPlan,
    *,
    config: Config | None = None,
    force: bool = False,
    actor: str | None = None,
    select: Selector | None = None,
    expunger: Expunger | None = None,
    heartbeat: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Carry out ``plan``: server expunges first, then archive deletions in batches.

    Before each deletion batch the active holds are read again; when they changed
    since the plan, held messages are recomputed and left alone.

    :param config: the accounts (for expunges) and ``[retention_settings]``.
    :param expunger: how server copies are expunged (default: connect to each
        account's server, :class:`syncer.retention.expunge.ServerExpunger`).
    :param heartbeat: called after every batch (renews a lease; may raise to stop,
        which is audited as an interrupted run).
    :param progress: called as ``progress(done, total)`` after every deletion batch.
    :raises RetentionRefused: when the plan deletes too large a share, unforced.
    """
    from syncer.config.retention import RetentionSettings

    settings = config.retention_settings if config is not None else RetentionSettings()
    result = ApplyResult(run_id=uuid.uuid4().hex)
    try:
        check_share(plan, settings.max_delete_share, force=force)
    except RetentionRefused as exc:
        _audit_run(store, plan, result, actor, force, "refused", reason=exc.message)
        raise
    select = select or store_selector(store, plan.now)
    try:
        _expunge(store, plan, result, config=config, actor=actor, expunger=expunger, select=select)
        _delete(store, plan, result, settings.batch_size, actor, select, heartbeat, progress)
    except BaseException as exc:
        # Every batch done is audited already; record that the run did not finish.
        error = f"{type(exc).__name__}: {exc}"
        _audit_run(store, plan, result, actor, force, "interrupted", error=error)
        raise
    _audit_run(store, plan, result, actor, force, "partial" if result.problems else "ok")
    log.info(
        "retention.applied",
        run_id=result.run_id,
        deleted=result.deleted,
        bytes=result.deleted_bytes,
        expunged=result.expunged,
        problems=len(result.problems),
    )
    return result


def _expunge(
    store: ArchiveStore,
    plan: RetentionPlan,
    result: ApplyResult,
    *,
    config: Config | None,
    actor: str | None,
    expunger: Expunger | None,
    select: Selector,
) -> None:
    copies = [copy for p in plan.policies for copy in p.expunge]
    if not copies:
        return
    if {h.name for h in store.holds()} != set(plan.holds):
        # A hold placed or released since the plan: what it protects now is kept.
        guard = protection(store, sorted({c.message_pk for c in copies}), select=select)
        kept = [c for c in copies if guard.covers(c.message_pk)]
        result.skipped_by_new_holds += len({c.message_pk for c in kept})
        copies = [c for c in copies if not guard.covers(c.message_pk)]
        if not copies:
            return
    if expunger is None:
        from syncer.retention.expunge import ServerExpunger

        expunger = ServerExpunger(config)
    owner = {c.message_pk: p.name for p in plan.policies for c in p.expunge}
    outcome = expunger.expunge(store, copies, owner=owner, actor=actor, run_id=result.run_id)
    result.expunged = outcome.expunged
    result.problems.extend(outcome.problems)


def _delete(
    store: ArchiveStore,
    plan: RetentionPlan,
    result: ApplyResult,
    batch_size: int,
    actor: str | None,
    select: Selector,
    heartbeat: Callable[[], None] | None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Delete the plan's messages in batches, skipping any a hold placed since covers."""
    holds_seen = set(plan.holds)
    held_now: set[int] = set()
    total = sum(len(p.delete) for p in plan.policies)
    handled = 0
    for policy_plan in plan.policies:
        for start in range(0, len(policy_plan.delete), batch_size):
            batch = policy_plan.delete[start : start + batch_size]
            active = store.holds()
            if {h.name for h in active} != holds_seen:
                held_now = held_ids(active, select)
                holds_seen = {h.name for h in active}
            # While a hold is active, what it cannot see (e.g. marked for re-normalization
            # since the plan) is kept as well.
            unseen = store.hold_blind(batch) if active else {}
            allowed = [pk for pk in batch if pk not in held_now and pk not in unseen]
            result.skipped_by_new_holds += len(batch) - len(allowed)
            done = store.delete_messages(
                allowed,
                actor=actor,
                details={"policy": policy_plan.name, "run_id": result.run_id},
            )
            result.deleted += done.messages
            result.deleted_bytes += done.bytes
            result.blobs_removed += done.blobs_removed
            result.files_removed += done.files_removed
            result.deleted_sha256.extend(done.sha256s)
            log.info("retention.batch_deleted", policy=policy_plan.name, messages=done.messages)
            handled += len(batch)
            if progress is not None:
                progress(handled, total)
            if heartbeat is not None:
                heartbeat()


def _audit_run(
    store: ArchiveStore,
    plan: RetentionPlan,
    result: ApplyResult,
    actor: str | None,
    force: bool,
    outcome: str,
    **extra: str,
) -> None:
    """The ``retention.run`` event: the plan (without its sample), outcome and result."""
    summary = plan.to_dict()
    for policy in summary["policies"]:
        policy.pop("sample", None)  # subjects stay out of the audit trail
    store.audit(
        "retention.run",
        actor=actor,
        subject=result.run_id,
        details={
            "outcome": outcome,
            "forced": force,
            "plan": summary,
            "result": result.to_dict(),
            **extra,
        },
    )


# --------------------------------------------------------------------------- policy changes


def _periods(policy: dict[str, Any]) -> dict[str, int | None]:
    return {
        k: policy.get(k)
        for k in ("keep_min_days", "delete_after_days", "expunge_server_after_days")
    }


# Allowed (C901): collaborators passed explicitly; one branch per audited change.
def policy_change_events(old: str | None, new: str) -> list[tuple[str, Any]]:  # noqa: C901
    """The audit events a change of the recorded policies is worth.

    ``retention.policies_recorded`` the first time; then
    ``retention.policies_changed`` with what was added, removed and changed, and
    additionally ``retention.keep_shortened`` naming each change that keeps
    messages for less time: a floor lowered or dropped, a deletion or expunge
    period shortened or introduced, a deleting policy added, or a policy's
    ``match`` changed while it deletes or expunges.
    """
    import json

    after = {p["name"]: p for p in json.loads(new)}
    if old is None:
        return [("retention.policies_recorded", {"policies": list(after.values())})]
    before = {p["name"]: p for p in json.loads(old)}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(n for n in set(after) & set(before) if after[n] != before[n])
    shortened: list[str] = []
    for name in added:
        p = after[name]
        for key in ("delete_after_days", "expunge_server_after_days"):
            if p.get(key) is not None:
                shortened.append(f"policy {name!r} added with {key} = {p[key]}")
    for name in removed:
        if before[name].get("keep_min_days") is not None:
            shortened.append(
                f"policy {name!r} removed with its floor keep_min_days = "
                f"{before[name]['keep_min_days']}"
            )
    for name in changed:
        old_p, new_p = _periods(before[name]), _periods(after[name])
        was, now = old_p["keep_min_days"], new_p["keep_min_days"]
        if was is not None and (now is None or now < was):
            shortened.append(f"policy {name!r}: keep_min_days {was} -> {now}")
        for key in ("delete_after_days", "expunge_server_after_days"):
            was, now = old_p[key], new_p[key]
            if now is not None and (was is None or now < was):
                shortened.append(f"policy {name!r}: {key} {was} -> {now}")
        deletes = any(
            new_p[k] is not None for k in ("delete_after_days", "expunge_server_after_days")
        )
        if before[name].get("match") != after[name].get("match") and deletes:
            shortened.append(
                f"policy {name!r}: match {before[name].get('match')!r} -> "
                f"{after[name].get('match')!r}"
            )
    events: list[tuple[str, Any]] = [
        (
            "retention.policies_changed",
            {
                "added": added,
                "removed": removed,
                "changed": changed,
                "before": list(before.values()),
                "after": list(after.values()),
            },
        )
    ]
    if shortened:
        events.append(("retention.keep_shortened", {"changes": shortened}))
    return events


def record_policies(
    store: ArchiveStore, policies: Sequence[RetentionPolicy], *, actor: str | None = None
) -> list[tuple[str, Any]]:
    """Compare the configured policies with the snapshot in ``job_state`` (retention,
    policies), audit any change and record the new snapshot; returns the events.

    Called at ``syncer run`` start and by every retention command.
    """
    from syncer.config.retention import policies_snapshot

    events = store.swap_job_data(
        "retention",
        "policies",
        policies_snapshot(list(policies)),
        policy_change_events,
        actor=actor,
    )
    for kind, details in events:
        if kind == "retention.keep_shortened":
            log.warning("retention.keep_shortened", changes=details["changes"])
        else:
            log.info(kind)
    return events

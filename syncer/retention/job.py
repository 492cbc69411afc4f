"""Running retention under its lease: ``syncer retention apply`` and the ``retention`` job
of ``syncer run`` ([retention_settings] schedule).

Why a module of its own: both ways of applying the policies must do the same
thing -- record policy changes, take the lease ``retention`` (one run at a
time across every worker), build the plan, apply it with the lease renewed
after every batch. The daemon's job (:mod:`syncer.daemon.kinds`) calls
:func:`run_retention` unforced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from syncer.retention.expunge import ServerExpunger
from syncer.retention.policy import apply_plan, build_plan, record_policies
from syncer.sync.runner import job_lease

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.retention.policy import ApplyResult, RetentionPlan

log = structlog.get_logger(__name__)

#: The lease that makes retention runs one at a time.
LEASE = "retention"


def run_retention(
    store: ArchiveStore,
    config: Config,
    *,
    holder: str,
    actor: str,
    force: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[RetentionPlan, ApplyResult]:
    """Record policy changes, then plan and apply under the lease ``retention``.

    :raises LeaseHeld: when another run holds the lease.
    :raises RetentionRefused: when the run deletes too large a share, unforced.
    :raises Stopped: when ``stop`` was set (after the batch in flight).
    """
    record_policies(store, config.retention, actor=actor)
    with job_lease(store, config, LEASE, holder=holder) as lease:
        plan = build_plan(store, config.retention)
        result = apply_plan(
            store,
            plan,
            config=config,
            force=force,
            actor=actor,
            expunger=ServerExpunger(config, holder=holder),
            heartbeat=lease.heartbeat(stop),
            progress=progress,
        )
    return plan, result
